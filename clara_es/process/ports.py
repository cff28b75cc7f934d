"""What the process's effects drive: LiveKit's room, and an in-process agent's pipeline.

Both are called at least once per request (again after a crash), so both must be safe to
repeat: restarting a pipeline twice restarts it twice, removing a participant that is gone
is already clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID

from clara_es.domain.session import VoiceSession

CLEANUP_SKIPPED = "cleanup skipped: no LiveKit configured"


@dataclass(frozen=True)
class SessionRef:
    session_id: UUID
    room: str
    participant: str

    @classmethod
    def of(cls, session: VoiceSession) -> SessionRef:
        return cls(session.id, session.room, session.participant)


@dataclass(frozen=True)
class CleanupResult:
    outcome: Literal["cleaned", "failed", "skipped"]
    detail: str


class AudioPipeline(Protocol):
    def restart(self, session: SessionRef) -> None:
        """Restart the agent's audio pipeline for the session; raise if it cannot."""
        ...

    def stop(self, session: SessionRef) -> None:
        """Stop the pipeline for good (cleanup). Stopping a stopped pipeline is fine."""
        ...


class RoomCleaner(Protocol):
    def cleanup(self, session: SessionRef, delete_room: bool) -> CleanupResult:
        """Remove the participant, and the room when it belongs to the session."""
        ...


class SkippedRoomCleaner:
    """No LiveKit settings: say so in the stream instead of pretending the room is clean."""

    def cleanup(self, session: SessionRef, delete_room: bool) -> CleanupResult:
        return CleanupResult("skipped", CLEANUP_SKIPPED)
