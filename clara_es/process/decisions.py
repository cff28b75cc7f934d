"""The decision table: one session fact in, changes to the due-work rows out.

Everything is derived from the facts (and, where a rule needs it, from the session as it was
at that fact): no copy of the session's state is kept here. Each rule is written once, in the
domain: the watchdog deadline (`attempt_deadline`), the bad qualities (`BAD_QUALITY`), the
restart backoff (`VoiceSession.next_restart_at`); the restart cap travels in the command.

Kinds of due work per session (a new one of a kind replaces the old, so a superseded timer
never fires):
  attempt           the watchdog: fail an attempt with no outcome by its deadline
  restart           ask for the next pipeline restart: at once on QualityPoor, after the
                    backoff when one failed
  cleanup           ask for cleanup: after the grace time past Failed, at once after SessionEnded
  pipeline_restart  effect: restart the agent's audio pipeline, report the outcome
  room_cleanup      effect: remove the participant (and the room, if no other session uses it)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid5

from clara_es.config import Settings
from clara_es.domain.connection import attempt_deadline
from clara_es.domain.events import (
    CleanupFailed,
    CleanupRequested,
    CleanupSkipped,
    Failed,
    PipelineRestarted,
    PipelineRestartFailed,
    PipelineRestartRequested,
    QualityChanged,
    QualityPoor,
    ReconnectAttempted,
    ReconnectAttemptFailed,
    Reconnected,
    ReconnectScheduled,
    SessionCleanedUp,
    SessionEnded,
    SessionEvent,
    SessionStarted,
)
from clara_es.domain.session import VoiceSession
from clara_es.domain.state import BAD_QUALITY

log = logging.getLogger("clara_es.process")

ATTEMPT, RESTART, CLEANUP = "attempt", "restart", "cleanup"
PIPELINE_RESTART, ROOM_CLEANUP = "pipeline_restart", "room_cleanup"
TIMERS = frozenset({ATTEMPT, RESTART, CLEANUP})
EFFECTS = frozenset({PIPELINE_RESTART, ROOM_CLEANUP})
# The commands a timer sends: the facts they lead to carry the timer's id as their cause.
TIMER_SIGNALS = frozenset({"attempt_timed_out", "request_pipeline_restart", "request_cleanup"})


@dataclass(frozen=True)
class Set:
    """Put due work of `kind` (replacing the session's previous one of that kind)."""

    kind: str
    job_id: str
    due_at: datetime
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Clear:
    kind: str
    why: str


@dataclass(frozen=True)
class Fired:
    """The timer with this id led to a fact (maybe a SignalIgnored): it is done."""

    job_id: str


@dataclass(frozen=True)
class Join:
    room: str


@dataclass(frozen=True)
class Leave:
    pass


Change = Set | Clear | Fired | Join | Leave


class Facts(Protocol):
    """What a rule may ask beyond the fact itself, answered from the store."""

    def session_at(self, session_id: UUID, version: int) -> VoiceSession:
        """The session as it was right after its fact `version`."""
        ...

    def room_used_by_others(self, room: str, session_id: UUID) -> bool:
        """Whether a session other than `session_id` may still be in `room`."""
        ...


def react(fact: SessionEvent, facts: Facts, settings: Settings) -> list[Change]:
    """The row changes one session fact calls for, in order."""
    changes: list[Change] = []
    cause = fact.cause or {}
    if cause.get("name") in TIMER_SIGNALS and cause.get("id"):
        changes.append(Fired(str(cause["id"])))
    name = type(fact).__name__
    # One timer per fact, the same id when the fact is processed again.
    timer_id = uuid5(fact.originator_id, f"{name}/{fact.originator_version}").hex
    timeout = timedelta(seconds=settings.attempt_timeout_s)
    match fact:
        case SessionStarted():
            changes.append(Join(fact.room))
        case ReconnectScheduled() | ReconnectAttempted():
            changes.append(Set(ATTEMPT, timer_id, attempt_deadline(fact, timeout),
                               {"attempt": fact.attempt}))
        case ReconnectAttemptFailed() | Reconnected():
            changes.append(Clear(ATTEMPT, name))
        case QualityChanged() if fact.quality not in BAD_QUALITY:
            changes.append(Clear(RESTART, f"quality {fact.quality}"))
        case QualityPoor():
            log.info("event=quality_poor_detected session=%s participant=%s quality=%s",
                     fact.originator_id, fact.participant, fact.quality)
            changes.append(Set(RESTART, timer_id, fact.timestamp))
        case PipelineRestartRequested():
            changes.append(Clear(RESTART, name))
            changes.append(Set(PIPELINE_RESTART, fact.request_id, fact.timestamp,
                               {"restart": fact.restart}))
        case PipelineRestarted():
            changes.append(Clear(PIPELINE_RESTART, name))
        case PipelineRestartFailed():
            changes.append(Clear(PIPELINE_RESTART, name))
            session = facts.session_at(fact.originator_id, fact.originator_version)
            if session.quality_bad:
                changes.append(Set(RESTART, timer_id, session.next_restart_at(fact)))
        case Failed() | SessionEnded():
            changes.append(Clear(ATTEMPT, name))
            changes.append(Clear(RESTART, name))
            grace = timedelta(seconds=settings.cleanup_grace_s if name == "Failed" else 0)
            reason = f"client {name}: {fact.reason}".rstrip(": ")
            changes.append(Set(CLEANUP, timer_id, fact.timestamp + grace, {"reason": reason}))
        case CleanupRequested():
            changes.append(Clear(CLEANUP, name))
            changes.append(Clear(RESTART, name))
            delete_room = not facts.room_used_by_others(fact.room, fact.originator_id)
            changes.append(Leave())
            changes.append(Set(ROOM_CLEANUP, fact.request_id, fact.timestamp,
                               {"delete_room": delete_room}))
        case SessionCleanedUp() | CleanupFailed() | CleanupSkipped():
            changes.append(Clear(ROOM_CLEANUP, name))
    return changes
