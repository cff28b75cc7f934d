"""The one table from a recorded signal (its name and arguments) back to the domain decision.

Every event records the signal that caused it; this table lets `replay --verify` (and the
simulator) send the same signal through today's domain code. A command or timer added to the
service gets its line here; a signal without one is reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from clara_es.domain import BackoffPolicy, DomainError, Quality, Signal, VoiceSession
from clara_es.domain.session import AgentConnection

Decide = Callable[[VoiceSession, dict[str, Any], Signal], None]


class UnknownSignal(DomainError):
    """A recorded signal that no line of the dispatch table can re-run."""


def _webhook(kind: str, then: Decide) -> Decide:
    def decide(session: VoiceSession, args: dict[str, Any], signal: Signal) -> None:
        if session.receive_webhook(args["webhook_id"], kind, signal):
            then(session, args, signal)

    return decide


DECISIONS: dict[str, Decide] = {
    "connect": lambda s, a, sig: s.connect(sig),
    "connected": lambda s, a, sig: s.mark_connected(sig),
    "disconnected": lambda s, a, sig: s.disconnect(a["reason"], sig),
    "attempt_started": lambda s, a, sig: s.start_attempt(a["attempt"], sig),
    "attempt_failed": lambda s, a, sig: s.fail_attempt(a["attempt"], a["error"], sig),
    "reconnected": lambda s, a, sig: s.reconnect(sig),
    "quality_changed": lambda s, a, sig: s.change_quality(
        a["participant"], Quality(a["quality"]), sig
    ),
    "end": lambda s, a, sig: s.end(a["reason"], sig),
    # LiveKit edges (issue 6)
    "resume_started": lambda s, a, sig: s.start_resume(sig),
    "quality_poor_confirmed": lambda s, a, sig: s.confirm_poor_quality(a["participant"], sig),
    "agent_connection_changed": lambda s, a, sig: s.change_agent_connection(
        AgentConnection(a["connection"]), a["reason"], sig
    ),
    "participant_left": lambda s, a, sig: s.report_participant_left(
        a["reason"], a["user_initiated"], sig
    ),
    "participant_joined": lambda s, a, sig: s.report_participant_joined(sig),
    "room_finished": lambda s, a, sig: s.finish_room(sig),
    "webhook participant_joined": _webhook(
        "participant_joined", lambda s, a, sig: s.report_participant_joined(sig)
    ),
    "webhook room_finished": _webhook("room_finished", lambda s, a, sig: s.finish_room(sig)),
    "webhook participant_left": _webhook(
        "participant_left",
        lambda s, a, sig: s.report_participant_left(a["reason"], a["user_initiated"], sig),
    ),
    "webhook participant_connection_aborted": _webhook(
        "participant_connection_aborted",
        lambda s, a, sig: s.report_participant_left("connection aborted", False, sig),
    ),
    # The process manager's timers and effect outcomes (issue 5; the methods arrive with it).
    # A timer's command has actor `system` and the timer's id as its cause id.
    "attempt_timed_out": lambda s, a, sig: s.fail_attempt(a["attempt"], "timeout", sig),
    "request_pipeline_restart": lambda s, a, sig: s.request_pipeline_restart(a["cap"], sig),
    "pipeline_restart_finished": lambda s, a, sig: s.finish_pipeline_restart(
        a["request_id"], a["error"], sig
    ),
    "request_cleanup": lambda s, a, sig: s.request_cleanup(a["reason"], sig),
    "cleanup_finished": lambda s, a, sig: s.finish_cleanup(
        a["request_id"], a["outcome"], a["detail"], sig
    ),
}


def decide(session: VoiceSession, signal: Signal) -> None:
    """Let `session` decide on a recorded signal, as the service did when it arrived."""
    line = DECISIONS.get(signal.name)
    if line is None:
        raise UnknownSignal(f"no decision is known for signal {signal.name!r}")
    try:
        line(session, signal.args, signal)
    except KeyError as exc:
        raise UnknownSignal(f"signal {signal.name!r} was recorded without {exc}") from None


def start(signal: Signal, session_id: UUID) -> VoiceSession:
    """A session created by a recorded `start` signal, with its stored id."""
    if signal.name != "start":
        raise UnknownSignal(f"a session starts with 'start', not {signal.name!r}")
    args = signal.args
    return VoiceSession.start(
        args["room"], args["participant"], BackoffPolicy.model_validate(args["policy"]),
        signal, session_id=session_id,
    )
