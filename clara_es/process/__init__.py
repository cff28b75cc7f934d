"""Reactions: the process manager (due work kept from the session facts), its timers and the
effect runner; an in-process agent for a pipeline that lives beside the service."""

from clara_es.process.due import Job, ProcessManager
from clara_es.process.local_agent import InMemoryAudioPipeline, InProcessAgent
from clara_es.process.ports import (
    CLEANUP_SKIPPED,
    AudioPipeline,
    CleanupResult,
    RoomCleaner,
    SessionRef,
    SkippedRoomCleaner,
)
from clara_es.process.worker import Worker, start_worker

__all__ = [
    "CLEANUP_SKIPPED",
    "AudioPipeline",
    "CleanupResult",
    "InMemoryAudioPipeline",
    "InProcessAgent",
    "Job",
    "ProcessManager",
    "RoomCleaner",
    "SessionRef",
    "SkippedRoomCleaner",
    "Worker",
    "start_worker",
]
