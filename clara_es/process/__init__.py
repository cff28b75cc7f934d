"""Reactions: the process manager, its durable timers and the effect runner."""

from clara_es.process.ports import (
    CLEANUP_SKIPPED,
    AudioPipeline,
    CleanupResult,
    InMemoryAudioPipeline,
    RoomCleaner,
    SessionRef,
    SkippedRoomCleaner,
)
from clara_es.process.reactions import ProcessManager, Reaction, reactions_env
from clara_es.process.worker import Worker, start_worker

__all__ = [
    "CLEANUP_SKIPPED",
    "AudioPipeline",
    "CleanupResult",
    "InMemoryAudioPipeline",
    "ProcessManager",
    "Reaction",
    "RoomCleaner",
    "SessionRef",
    "SkippedRoomCleaner",
    "Worker",
    "reactions_env",
    "start_worker",
]
