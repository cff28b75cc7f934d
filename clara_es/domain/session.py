"""The voice session: one event stream per session, deciding every transition in one place.

The rules are written in modules of one idea each, read in this order:
  connection.py  the reconnect state machine (DESIGN.md section 3) and what LiveKit reports
  quality.py     quality, poor quality confirmed after a window, pipeline restarts (capped)
  cleanup.py     removing the participant and the room after the session
The facts they record, and what each fact changes, are in events.py.

Command methods (public) decide; events only apply.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from clara_es.domain.connection import ConnectionRules
from clara_es.domain.errors import InvalidTransition
from clara_es.domain.events import SessionStarted
from clara_es.domain.policy import BackoffPolicy
from clara_es.domain.quality import QualityRules
from clara_es.domain.signal import Signal
from clara_es.domain.state import (
    ATTEMPTS_EXHAUSTED,
    BAD_QUALITY,
    FINAL_STATES,
    AgentConnection,
    ConnectionState,
    Quality,
)


class VoiceSession(ConnectionRules, QualityRules, Aggregate):
    @classmethod
    def start(
        cls, room: str, participant: str, policy: BackoffPolicy, signal: Signal,
        session_id: UUID | None = None,
    ) -> VoiceSession:
        """A new session; `session_id` is given only when a stored session is re-run."""
        if not room or not participant:
            raise InvalidTransition("a session needs a room name and a participant identity")
        return cls._create(
            SessionStarted, id=session_id,
            room=room, participant=participant, policy=policy.model_dump(), **signal.facts(),
        )


__all__ = [
    "ATTEMPTS_EXHAUSTED",
    "BAD_QUALITY",
    "FINAL_STATES",
    "AgentConnection",
    "ConnectionState",
    "Quality",
    "VoiceSession",
]
