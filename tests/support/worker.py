"""Building the process manager and its worker on a test's store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import VirtualClock, commands
from clara_es.process import (
    AudioPipeline,
    InMemoryAudioPipeline,
    RoomCleaner,
    SkippedRoomCleaner,
    Worker,
    start_worker,
)
from tests.support.scenarios import connected


def settings(**overrides: Any) -> Settings:
    """Defaults, whatever the environment says."""
    return Settings.model_construct(**{**Settings.model_construct().model_dump(), **overrides})


@contextmanager
def worker_on(
    app: VoiceSessions,
    pipeline: AudioPipeline | None = None,
    cleaner: RoomCleaner | None = None,
    config: Settings | None = None,
    agent: bool = True,
) -> Iterator[Worker]:
    """A worker on `app`'s store; an in-process agent restarts on `pipeline` (a fresh
    InMemoryAudioPipeline by default; `agent=False`: no agent at all, as under `serve`)."""
    worker = start_worker(app, cleaner or SkippedRoomCleaner(), config or settings(),
                          pipeline=(pipeline or InMemoryAudioPipeline()) if agent else None)
    try:
        yield worker
    finally:
        worker.close()


def failed_session(app: VoiceSessions, clock: VirtualClock, room: str = "room-1") -> UUID:
    """A session whose client ran out of attempts: Failed, with the spec's schedule."""
    session_id = connected(app, room, "alice")
    state = app.handle(commands.ReportDisconnected(reason="network"), session_id)
    while state.next_retry_at is not None:
        clock.advance_to(state.next_retry_at)
        app.handle(commands.StartAttempt(attempt=state.attempt), session_id)
        failure = commands.FailAttempt(attempt=state.attempt, error="network unreachable")
        state = app.handle(failure, session_id)
    return session_id


def drop_while_a_worker_runs(app: VoiceSessions) -> tuple[UUID, int]:
    """A connected session drops while a worker runs: its timers are recorded, then the worker
    stops. Answers the session and the worker's position in the log."""
    with worker_on(app) as worker:
        session_id = connected(app)
        app.handle(commands.ReportDisconnected(reason="network"), session_id)
        worker.run_pending()
        return session_id, worker.manager.position()
