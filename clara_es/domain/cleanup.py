"""Cleaning up behind a session: the participant removed and the room deleted on LiveKit.

The process manager asks (CleanupRequested) and the effect runner reports the outcome with the
request's id. Each request has exactly one outcome: a second report for the same request (an
effect run again after a crash) is recorded as SignalIgnored. Cleanup facts may follow Failed
or SessionEnded: the client's state stays final, the server still has to tidy up behind it.
"""

from __future__ import annotations

from typing import Literal

from clara_es.domain.errors import InvalidTransition
from clara_es.domain.events import (
    CleanupFailed,
    CleanupRequested,
    CleanupSkipped,
    Failed,
    SessionCleanedUp,
    SessionEvent,
)
from clara_es.domain.rules import Rules
from clara_es.domain.signal import Signal

CleanupOutcome = Literal["cleaned", "failed", "skipped"]

_OUTCOME_EVENTS: dict[str, tuple[type[SessionEvent], str]] = {
    "cleaned": (SessionCleanedUp, "removed"),
    "failed": (CleanupFailed, "error"),
    "skipped": (CleanupSkipped, "reason"),
}


class CleanupRules(Rules):
    def request_cleanup(self, reason: str, signal: Signal) -> None:
        """Remove the participant and the room. A live session fails first, so a late
        reconnect cannot revive a session whose room is being torn down."""
        if self.cleanup_request is not None:
            self._ignore(signal, f"cleanup {self.cleanup_request} was already requested")
            return
        if not self.is_final:
            self._record(Failed, signal, reason=reason, attempts=self.attempt)
        self._record(
            CleanupRequested, signal,
            request_id=signal.id, reason=reason, room=self.room, participant=self.participant,
        )

    def finish_cleanup(
        self, request_id: str, outcome: CleanupOutcome, detail: str, signal: Signal
    ) -> None:
        """outcome: "cleaned" (nothing left, or nothing was there), "failed", "skipped"."""
        if request_id != self.cleanup_request or self.cleanup_outcome is not None:
            self._ignore(signal, f"cleanup {request_id} has no outcome pending")
            return
        if outcome not in _OUTCOME_EVENTS:
            raise InvalidTransition(f"unknown cleanup outcome {outcome!r}")
        event_class, field = _OUTCOME_EVENTS[outcome]
        self._record(event_class, signal, request_id=request_id, **{field: detail})
