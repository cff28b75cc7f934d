"""`clara-es run`: the service's background work in one process, until interrupted."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import click

from clara_es.application import VoiceSessions
from clara_es.bootstrap import Runner
from clara_es.cli.common import (
    claim_store,
    console,
    db_option,
    open_app,
    require_folder,
    root_for,
    stop_on_signals,
)

log = logging.getLogger("clara_es.run")


@click.command()
@db_option
def run(db: Path | None) -> None:
    """Run the process manager, its timers, the effect runner and the views until interrupted."""
    root = root_for(db)
    require_folder(root.store)
    root.configure_logging()
    stop = stop_on_signals()
    runners: dict[str, Runner] = {"reactions": root.reactions, "views": root.views}
    with open_app(root, create=True) as app:
        # Claimed once the store is known to be good, so a refused start leaves no file behind.
        claim = claim_store(root)  # noqa: F841  (held until the process ends)
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
