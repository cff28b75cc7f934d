"""Building the process manager and its worker on a test's store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.process import (
    AudioPipeline,
    InMemoryAudioPipeline,
    RoomCleaner,
    SkippedRoomCleaner,
    Worker,
    start_worker,
)


def settings(**overrides: Any) -> Settings:
    """Defaults, whatever the environment says."""
    return Settings.model_construct(**{**Settings.model_construct().model_dump(), **overrides})


@contextmanager
def worker_on(
    app: VoiceSessions,
    pipeline: AudioPipeline | None = None,
    cleaner: RoomCleaner | None = None,
    config: Settings | None = None,
) -> Iterator[Worker]:
    worker = start_worker(app, pipeline or InMemoryAudioPipeline(),
                          cleaner or SkippedRoomCleaner(), config or settings())
    try:
        yield worker
    finally:
        worker.close()
