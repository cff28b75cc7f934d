"""The decision table: one session fact in, changes to the due-work rows out.

Everything is derived from the facts (and, where a rule needs it, from the session as it was
at that fact): no copy of the session's state is kept here. Each rule is written once, in the
domain: the watchdog deadline (`attempt_deadline`), the bad qualities (`BAD_QUALITY`), the
restart backoff (`VoiceSession.next_restart_at`); the restart cap travels in the command.

Kinds of due work per session (a new one of a kind replaces the old, so a superseded timer
never fires):
  attempt           the watchdog: fail an attempt with no outcome by its deadline
  poor_window       confirm poor quality when a poor-or-lost spell lasts the window
  restart           ask for the next pipeline restart: at once on QualityPoor, after the
                    backoff when one failed
  pipeline_restart  the deadline of a requested restart: no agent reported it, it failed
  cleanup           ask for cleanup: after the grace time past Failed, at once after SessionEnded
  idle              end a session nobody reported anything on for the idle timeout
  room_cleanup      effect: remove the participant (and the room, if no other session uses it)

Pipeline restarts are performed by the agent that owns the pipeline, in its own process: it
learns the request from the session's stream, claims it and reports the outcome. Nothing here
performs one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid5

from clara_es.config import Settings
from clara_es.domain import events
from clara_es.domain.connection import attempt_deadline
from clara_es.domain.session import VoiceSession
from clara_es.domain.signal import Actor
from clara_es.domain.state import BAD_QUALITY

log = logging.getLogger("clara_es.process")

ATTEMPT, POOR_WINDOW, RESTART, CLEANUP = "attempt", "poor_window", "restart", "cleanup"
PIPELINE_RESTART, IDLE, ROOM_CLEANUP = "pipeline_restart", "idle", "room_cleanup"
TIMERS = frozenset({ATTEMPT, POOR_WINDOW, RESTART, PIPELINE_RESTART, CLEANUP, IDLE})
EFFECTS = frozenset({ROOM_CLEANUP})
# The commands a timer sends: the facts they lead to carry the timer's id as their cause.
TIMER_SIGNALS = frozenset({
    "attempt_timed_out", "quality_poor_confirmed", "request_pipeline_restart",
    "pipeline_restart_timed_out", "request_cleanup", "idle_timed_out",
})


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


def react(fact: events.SessionEvent, facts: Facts, settings: Settings) -> list[Change]:
    """The row changes one session fact calls for, in order."""
    changes: list[Change] = []
    cause = fact.cause or {}
    if cause.get("name") in TIMER_SIGNALS and cause.get("id"):
        changes.append(Fired(str(cause["id"])))
    name = type(fact).__name__
    sid = fact.originator_id
    # One timer per fact, the same id when the fact is processed again.
    timer_id = uuid5(sid, f"{name}/{fact.originator_version}").hex
    timeout = timedelta(seconds=settings.attempt_timeout_s)
    restart_timeout = timedelta(seconds=settings.pipeline_restart_timeout_s)
    if fact.actor != Actor.SYSTEM:  # (Failed and SessionEnded clear it again below)
        idle = timedelta(seconds=settings.idle_timeout_s)
        changes.append(Set(IDLE, timer_id, fact.timestamp + idle,
                           {"idle_s": settings.idle_timeout_s}))
    match fact:
        case events.SessionStarted():
            changes.append(Join(fact.room))
        case events.ReconnectScheduled() | events.ReconnectAttempted():
            changes.append(Set(ATTEMPT, timer_id, attempt_deadline(fact, timeout),
                               {"attempt": fact.attempt}))
        case events.ReconnectAttemptFailed() | events.Reconnected():
            changes.append(Clear(ATTEMPT, name))
        case events.QualityChanged() if fact.quality not in BAD_QUALITY:
            changes.append(Clear(POOR_WINDOW, f"quality {fact.quality}"))
            changes.append(Clear(RESTART, f"quality {fact.quality}"))
        case events.QualityChanged():
            session = facts.session_at(sid, fact.originator_version)
            ends = session.poor_window_ends_at(timedelta(seconds=settings.poor_window_s))
            if ends is not None and session.poor_since is not None:
                changes.append(Set(POOR_WINDOW, timer_id, ends, {
                    "participant": fact.participant, "since": session.poor_since.isoformat(),
                }))
        case events.QualityPoor():
            log.info("event=quality_poor_detected session=%s participant=%s quality=%s",
                     sid, fact.participant, fact.quality)
            changes.append(Clear(POOR_WINDOW, name))
            changes.append(Set(RESTART, timer_id, fact.timestamp))
        case events.PipelineRestartRequested():
            log.info("event=pipeline_restart_requested session=%s restart=%s cap=%s",
                     sid, fact.restart, fact.cap)
            changes.append(Clear(RESTART, name))
            changes.append(Set(PIPELINE_RESTART, timer_id, fact.timestamp + restart_timeout,
                               {"request_id": fact.request_id}))
        case events.PipelineRestartClaimed():
            log.info("event=pipeline_restart_claimed session=%s agent=%s", sid, fact.agent)
            # The claiming agent has the whole deadline again to perform it.
            changes.append(Set(PIPELINE_RESTART, timer_id, fact.timestamp + restart_timeout,
                               {"request_id": fact.request_id}))
        case events.PipelineRestarted():
            log.info("event=pipeline_restart session=%s restart=%s outcome=restarted",
                     sid, fact.restart)
            changes.append(Clear(PIPELINE_RESTART, name))
        case events.PipelineRestartFailed():
            log.info("event=pipeline_restart session=%s restart=%s outcome=failed error=%r",
                     sid, fact.restart, fact.error)
            changes.append(Clear(PIPELINE_RESTART, name))
            session = facts.session_at(sid, fact.originator_version)
            if session.quality_bad:
                changes.append(Set(RESTART, timer_id, session.next_restart_at(fact)))
        case events.Failed() | events.SessionEnded():
            for kind in (ATTEMPT, POOR_WINDOW, RESTART, PIPELINE_RESTART, IDLE):
                changes.append(Clear(kind, name))
            grace = timedelta(seconds=settings.cleanup_grace_s if name == "Failed" else 0)
            reason = f"client {name}: {fact.reason}".rstrip(": ")
            changes.append(Set(CLEANUP, timer_id, fact.timestamp + grace, {"reason": reason}))
        case events.CleanupRequested():
            log.info("event=cleanup_requested session=%s reason=%r", sid, fact.reason)
            for kind in (CLEANUP, POOR_WINDOW, RESTART, PIPELINE_RESTART, IDLE):
                changes.append(Clear(kind, name))
            delete_room = not facts.room_used_by_others(fact.room, sid)
            changes.append(Leave())
            changes.append(Set(ROOM_CLEANUP, fact.request_id, fact.timestamp,
                               {"delete_room": delete_room}))
        case events.SessionCleanedUp() | events.CleanupFailed() | events.CleanupSkipped():
            changes.append(Clear(ROOM_CLEANUP, name))
    return changes
