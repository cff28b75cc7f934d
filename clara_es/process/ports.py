"""What the effect runner drives: the agent's audio pipeline and the LiveKit room.

Both are called at least once per request (again after a crash), so both must be safe to
repeat: restarting a pipeline twice restarts it twice, removing a participant that is gone
is already clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol
from uuid import UUID

CLEANUP_SKIPPED = "cleanup skipped: no LiveKit configured"


@dataclass(frozen=True)
class SessionRef:
    session_id: UUID
    room: str
    participant: str


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


@dataclass
class InMemoryAudioPipeline:
    """The agent's pipeline for the demo and tests: counts restarts, can be told to fail."""

    failures: int = 0  # restarts that fail before one succeeds
    restarts: dict[UUID, int] = field(default_factory=dict)
    stopped: set[UUID] = field(default_factory=set)

    def restart(self, session: SessionRef) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("audio pipeline did not come back")
        self.restarts[session.session_id] = self.restarts.get(session.session_id, 0) + 1

    def stop(self, session: SessionRef) -> None:
        self.stopped.add(session.session_id)


class SkippedRoomCleaner:
    """No LiveKit settings: say so in the stream instead of pretending the room is clean."""

    def cleanup(self, session: SessionRef, delete_room: bool) -> CleanupResult:
        return CleanupResult("skipped", CLEANUP_SKIPPED)
