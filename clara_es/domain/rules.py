"""The one way a rule of the session records a fact, or records that it ignored a signal.

The session's decisions are written in three modules of one idea each, all built on this:
connection.py (the reconnect state machine), quality.py (quality and pipeline restarts),
cleanup.py (tidying LiveKit up after the session).
"""

from __future__ import annotations

from typing import Any

from clara_es.domain.errors import InvalidTransition
from clara_es.domain.events import SessionEvent, SignalIgnored
from clara_es.domain.signal import Signal
from clara_es.domain.state import ConnectionState, SessionState


class Rules(SessionState):
    def _record(self, event_class: type[SessionEvent], signal: Signal, /, **fields: Any) -> None:
        """Append one fact, stamped with the signal's time, reporter and cause."""
        self.trigger_event(event_class, **fields, **signal.facts())

    def _ignore(self, signal: Signal, reason: str) -> None:
        self._record(SignalIgnored, signal, signal=signal.name, reason=reason)

    def _require_started(self, signal: Signal) -> None:
        if self.state == ConnectionState.IDLE:
            raise InvalidTransition(f"{signal.name}: the session has not connected yet")

    def _require_participant(self, participant: str) -> None:
        if participant != self.participant:
            raise InvalidTransition(
                f"participant {participant!r} is not in this session ({self.participant!r} is)"
            )
