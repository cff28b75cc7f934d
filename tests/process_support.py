"""Building the process manager and its worker on a test's store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.process import (
    AudioPipeline,
    InMemoryAudioPipeline,
    ProcessManager,
    RoomCleaner,
    SkippedRoomCleaner,
    Worker,
    reactions_env,
)


def settings(**overrides: Any) -> Settings:
    """Defaults, whatever the environment says."""
    return Settings.model_construct(**{**Settings.model_construct().model_dump(), **overrides})


@contextmanager
def worker_on(
    store: Store,
    app: VoiceSessions,
    pipeline: AudioPipeline | None = None,
    cleaner: RoomCleaner | None = None,
    config: Settings | None = None,
) -> Iterator[Worker]:
    config = config or settings()
    manager = ProcessManager(reactions_env(store.eventsourcing_env()), settings=config)
    manager.follow("VoiceSessions", app.notification_log)
    try:
        yield Worker(app, manager, pipeline or InMemoryAudioPipeline(),
                     cleaner or SkippedRoomCleaner(), config)
    finally:
        manager.close()
