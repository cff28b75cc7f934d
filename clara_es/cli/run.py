"""`clara-es run`: the service's background work in one process, until interrupted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import click

from clara_es.adapters.rooms import room_cleaner
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.cli.common import console, db_option, open_app, resolve_store, stop_on_signals
from clara_es.config import Settings
from clara_es.process import InMemoryAudioPipeline, start_worker
from projections.db import upgrade
from projections.supervisor import Supervisor

log = logging.getLogger("clara_es.run")

# Each runner gets the application and the stop event and returns when the event is set.
Runner = Callable[[VoiceSessions, threading.Event], None]


def reactions(app: VoiceSessions, stop: threading.Event) -> None:
    """The process manager, its timers and the effect runner."""
    settings = Settings()
    cleaner = room_cleaner(settings, app.clock)
    if not settings.livekit_configured:
        log.warning("event=livekit_not_configured detail=%r",
                    "cleanup will be recorded as skipped; set CLARA_ES_LIVEKIT_URL, "
                    "CLARA_ES_LIVEKIT_API_KEY and CLARA_ES_LIVEKIT_API_SECRET")
    # The real agent's pipeline plugs in here; the in-memory one only records restarts.
    worker = start_worker(app, InMemoryAudioPipeline(), cleaner, settings)
    try:
        worker.run_forever(stop)
    finally:
        worker.close()


def views(store: Store) -> Runner:
    """The projections' supervisor: every view live, restarted from its position if it dies."""

    def run_views(_app: VoiceSessions, stop: threading.Event) -> None:
        upgrade(store)
        supervisor = Supervisor(store).start()
        try:
            stop.wait()
        finally:
            supervisor.stop()

    return run_views


@click.command()
@db_option
def run(db: Path | None) -> None:
    """Run the process manager, its timers, the effect runner and the views until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = stop_on_signals()
    runners: dict[str, Runner] = {"reactions": reactions, "views": views(resolve_store(db))}
    with open_app(db, create=True) as app:
        threads = [
            threading.Thread(target=_guarded, args=(name, runner, app, stop), name=name)
            for name, runner in runners.items()
        ]
        for thread in threads:
            thread.start()
        console.print(f"clara-es run: {', '.join(runners)} running; Ctrl-C or SIGTERM stops")
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)
    console.print("clara-es run: stopped")


def _guarded(name: str, runner: Runner, app: VoiceSessions, stop: threading.Event) -> None:
    """A runner that crashes stops the whole process rather than leaving it half alive."""
    try:
        runner(app, stop)
    except Exception:
        log.exception("event=runner_crashed runner=%s", name)
        stop.set()
