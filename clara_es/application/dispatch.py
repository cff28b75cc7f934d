"""From a recorded signal back to the domain decision, through the command catalogue.

Every event records the signal that caused it; `replay --verify` (and the simulator) rebuild the
command it was (clara_es/domain/commands/) and let today's session decide on it again. A
signal the catalogue does not know is reported, never guessed.
"""

from __future__ import annotations

from uuid import UUID

from clara_es.domain import BackoffPolicy, Signal, VoiceSession
from clara_es.domain.commands import StartSession, UnknownSignal, command_for


def decide(session: VoiceSession, signal: Signal) -> None:
    """Let `session` decide on a recorded signal, as the service did when it arrived."""
    command_for(signal).decide(session, signal)


def start(signal: Signal, session_id: UUID) -> VoiceSession:
    """A session created by a recorded `start` signal, with its stored id."""
    command = command_for(signal)
    if not isinstance(command, StartSession):
        raise UnknownSignal(f"a session starts with 'start', not {signal.name!r}")
    policy = command.policy or BackoffPolicy()
    return VoiceSession.start(
        command.room, command.participant, policy, signal, session_id=session_id
    )
