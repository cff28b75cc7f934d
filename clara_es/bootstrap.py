"""The composition root: settings are read here, once, and every command that opens the store
or runs for long (`run`, `serve`, `demo`, `simulate`, `agent`, the migrations) gets its parts
from here: the store, the application, the process manager's worker with its effect ports,
the views' runner, the HTTP service and the log lines.

Heavy parts (the HTTP service, LiveKit's RoomService) are imported only by the commands that
use them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pydantic import ValidationError

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import BackoffPolicy, Clock
from clara_es.logs import configure_logging
from clara_es.process import AudioPipeline, RoomCleaner, Worker, start_worker

if TYPE_CHECKING:
    from clara_es.http import Options, Service

log = logging.getLogger("clara_es.run")

# Background work of a long-running command: it gets the application and a stop event, and
# returns when the event is set.
Runner = Callable[[VoiceSessions, threading.Event], None]


class SettingsError(ValueError):
    """A CLARA_ES_ variable has a value that cannot be used."""


def read_settings() -> Settings:
    """The settings from the environment: the one place they are read."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CLARA_ES_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def bootstrap(db: Path | None = None, *, settings: Settings | None = None) -> Root:
    """The parts of one process. `db` (a command's --db) wins over CLARA_ES_DATABASE_URL."""
    settings = settings if settings is not None else read_settings()
    store = Store.sqlite(db) if db is not None else Store.from_url(settings.database_url)
    pools = {"pool_size": settings.pool_size, "pool_max_overflow": settings.pool_max_overflow}
    return Root(settings, replace(store, **pools))


def setup_logging(settings: Settings, *, quiet: bool = False) -> None:
    """Log lines to stderr in the configured format; `quiet` keeps only warnings and up
    (for the commands whose output is their report: demo, simulate)."""
    configure_logging(settings.log_format, "warning" if quiet else settings.log_level)


@dataclass(frozen=True)
class Root:
    settings: Settings
    store: Store

    def claim_store(self) -> IO[str] | None:
        """A long-running command's claim on a SQLite store (StoreInUse if another holds it);
        on PostgreSQL any number of processes share the database."""
        if self.store.sqlite_path is None:
            return None
        from clara_es.adapters.filelock import hold

        return hold(self.store.sqlite_path)

    def configure_logging(self, *, quiet: bool = False) -> None:
        setup_logging(self.settings, quiet=quiet)

    def open_sessions(
        self, *, clock: Clock | None = None, policy: BackoffPolicy | None = None,
        sole_writer: bool = False,
    ) -> VoiceSessions:
        """The application on the store (creating a SQLite file's folder); the caller closes it.
        `sole_writer`: see VoiceSessions (the simulator only)."""
        if self.store.sqlite_path is not None:
            self.store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return VoiceSessions(self.store.eventsourcing_env(), clock=clock, policy=policy,
                             sole_writer=sole_writer)

    def worker(
        self,
        app: VoiceSessions,
        pipeline: AudioPipeline | None = None,
        cleaner: RoomCleaner | None = None,
    ) -> Worker:
        """The process manager following `app`, and its worker with the effect ports:
        LiveKit's RoomService when it is configured (otherwise cleanup is recorded as skipped),
        and a `pipeline` only where the agent runs in this process (the demo): `run` and
        `serve` leave restarts to the agents that own the pipelines."""
        if cleaner is None:
            from clara_es.adapters.rooms import room_cleaner

            cleaner = room_cleaner(self.settings, app.clock)
        return start_worker(app, cleaner, self.settings, store=self.store, pipeline=pipeline)

    def reactions(self, app: VoiceSessions, stop: threading.Event) -> None:
        """Runner: the process manager, its timers and the effect runner, until `stop`."""
        if not self.settings.livekit_configured:
            log.warning("event=livekit_not_configured detail=%r",
                        "cleanup will be recorded as skipped; set CLARA_ES_LIVEKIT_URL, "
                        "CLARA_ES_LIVEKIT_API_KEY and CLARA_ES_LIVEKIT_API_SECRET")
        worker = self.worker(app)
        try:
            worker.run_forever(stop)
        finally:
            worker.close()

    def views(self, _app: VoiceSessions, stop: threading.Event) -> None:
        """Runner: every view live, restarted from its position if it dies, until `stop`."""
        from projections.db import upgrade
        from projections.supervisor import Supervisor

        upgrade(self.store)
        supervisor = Supervisor(self.store).start()
        try:
            stop.wait()
        finally:
            supervisor.stop()

    def service(self, api_key: str, api_secret: str, options: Options | None = None) -> Service:
        """What `serve` holds: the API's application (waking the live feeds), the views kept
        live, and the process manager running beside them."""
        from clara_es.http import Service

        return Service(self.store, api_key=api_key, api_secret=api_secret, options=options,
                       background={"reactions": self.reactions})
