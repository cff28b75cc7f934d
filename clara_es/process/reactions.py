"""The process manager: follows the session streams and records what must happen when.

`ProcessManager` is an eventsourcing ProcessApplication following VoiceSessions. For every
session fact its policy updates that session's `Reaction` (pending timers and pending
effects), and eventsourcing records those decisions together with the tracking position of
the fact, in one transaction of the process manager's own recorder. After a crash it resumes
at the first fact it had not recorded; the timers and effects are in the store, not in memory.

Timers per session (a new one of a kind replaces the old, so a superseded timer never fires):
  attempt  the watchdog. Deadline: due_at + timeout for a scheduled attempt (the client may
           have died before trying), started_at + timeout once attempted.
  restart  the next pipeline restart: at once on QualityPoor, after backoff when one failed.
  cleanup  after Failed, once the grace time passed; at once after SessionEnded.
Effects: a PipelineRestartRequested or CleanupRequested without its outcome yet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.system import ProcessApplication

from clara_es.config import Settings
from clara_es.domain import BackoffPolicy

log = logging.getLogger(__name__)

LEADER = "VoiceSessions"
BAD_QUALITIES = frozenset({"poor", "lost"})


class Reaction(Aggregate):
    """The process manager's view of one session (same id as the session)."""

    @staticmethod
    def create_id(session_id: UUID, **_: Any) -> UUID:
        return session_id

    @event("Following")
    def __init__(self, session_id: UUID, room: str, participant: str, policy: dict[str, Any]):
        self.room = room
        self.participant = participant
        self.policy = policy
        self.quality_bad = False
        self.timers: dict[str, dict[str, Any]] = {}
        self.effects: dict[str, dict[str, Any]] = {}
        self.closed = False

    @property
    def busy(self) -> bool:
        return bool(self.timers or self.effects)

    @event("TimerSet")
    def set_timer(self, kind: str, timer_id: str, due_at: datetime, args: dict[str, Any]) -> None:
        self.timers[kind] = {"id": timer_id, "due_at": due_at, "args": args}

    @event("TimerCleared")
    def _timer_cleared(self, kind: str, why: str) -> None:
        self.timers.pop(kind, None)

    def clear(self, kind: str, why: str) -> None:
        if kind in self.timers:
            self._timer_cleared(kind=kind, why=why)

    @event("EffectPending")
    def add_effect(self, kind: str, request_id: str, args: dict[str, Any]) -> None:
        self.effects[kind] = {"id": request_id, "args": args}

    @event("EffectSettled")
    def settle(self, kind: str, outcome: str) -> None:
        self.effects.pop(kind, None)
        if kind == "cleanup":
            self.closed = True

    @event("QualityNoted")
    def note_quality(self, bad: bool) -> None:
        self.quality_bad = bad


def react(reaction: Reaction, fact: Any, settings: Settings, owns_room: bool) -> None:
    """The decision table: one session fact in, timers and effects out."""
    name = type(fact).__name__
    at: datetime = fact.timestamp
    cause_id = (getattr(fact, "cause", None) or {}).get("id")
    for kind, timer in list(reaction.timers.items()):
        if timer["id"] == cause_id:
            reaction.clear(kind, f"fired: {name}")
    timeout = timedelta(seconds=settings.attempt_timeout_s)
    # One timer per fact, the same id when the fact is processed again after a crash.
    timer_id = uuid5(fact.originator_id, f"{name}/{fact.originator_version}").hex
    match name:
        case "ReconnectScheduled":
            # Deadlines count from when the service learned of it (a batch reported late).
            reaction.set_timer("attempt", timer_id, max(fact.due_at, fact.recorded_at) + timeout,
                               {"attempt": fact.attempt})
        case "ReconnectAttempted":
            reaction.set_timer("attempt", timer_id, fact.recorded_at + timeout,
                               {"attempt": fact.attempt})
        case "ReconnectAttemptFailed" | "Reconnected":
            reaction.clear("attempt", name)
        case "QualityChanged":
            bad = fact.quality in BAD_QUALITIES
            if bad != reaction.quality_bad:
                reaction.note_quality(bad=bad)
            if not bad:
                reaction.clear("restart", f"quality {fact.quality}")
        case "QualityPoor":
            log.info("event=quality_poor_detected session=%s participant=%s quality=%s",
                     fact.originator_id, fact.participant, fact.quality)
            reaction.set_timer("restart", timer_id, at, {})
        case "PipelineRestartRequested":
            reaction.clear("restart", name)
            reaction.add_effect("restart", fact.request_id, {"restart": fact.restart})
        case "PipelineRestarted":
            reaction.settle("restart", "restarted")
        case "PipelineRestartFailed":
            reaction.settle("restart", "failed")
            if reaction.quality_bad:
                policy = BackoffPolicy.model_validate(reaction.policy)
                n = min(fact.restart, policy.max_attempts)
                delay = timedelta(milliseconds=policy.delay_ms(n, key=str(fact.originator_id)))
                reaction.set_timer("restart", timer_id, at + delay, {})
        case "Failed" | "SessionEnded":
            reaction.clear("attempt", name)
            reaction.clear("restart", name)
            if not reaction.closed and "cleanup" not in reaction.effects:
                grace = timedelta(seconds=settings.cleanup_grace_s if name == "Failed" else 0)
                reason = f"client {name}: {getattr(fact, 'reason', '')}".rstrip(": ")
                reaction.set_timer("cleanup", timer_id, at + grace, {"reason": reason})
        case "CleanupRequested":
            reaction.clear("cleanup", name)
            reaction.clear("restart", name)
            reaction.add_effect("cleanup", fact.request_id, {"delete_room": owns_room})
        case "SessionCleanedUp" | "CleanupFailed" | "CleanupSkipped":
            reaction.settle("cleanup", name)


class ProcessManager(ProcessApplication[UUID]):
    name = "Reactions"
    pull_section_size = 500

    def __init__(self, env: Mapping[str, str] | None = None, *, settings: Settings) -> None:
        super().__init__(env)
        self.settings = settings
        self.busy: dict[UUID, Reaction] = {}  # reactions with timers or effects
        self.open_rooms: dict[str, set[UUID]] = {}  # room -> sessions not cleaned up
        self._load()

    def _load(self) -> None:
        """Rebuild the in-memory indexes from the stored reactions (after a restart)."""
        ids: set[UUID] = set()
        start = 1
        while notifications := self.recorder.select_notifications(start, 500):
            ids.update(n.originator_id for n in notifications)
            start = notifications[-1].id + 1
        for reaction_id in ids:
            self._index(self.repository.get(reaction_id))

    def _index(self, reaction: Reaction) -> None:
        if reaction.busy:
            self.busy[reaction.id] = reaction
        else:
            self.busy.pop(reaction.id, None)
        sessions = self.open_rooms.setdefault(reaction.room, set())
        if reaction.closed:
            sessions.discard(reaction.id)
        else:
            sessions.add(reaction.id)

    def catch_up(self) -> None:
        self.pull_and_process(LEADER)

    def policy(  # type: ignore[override]
        self, domain_event: DomainEventProtocol[UUID], processing_event: ProcessingEvent[UUID]
    ) -> None:
        fact: Any = domain_event
        if type(fact).__name__ == "SessionStarted":
            reaction = Reaction(session_id=fact.originator_id, room=fact.room,
                                participant=fact.participant, policy=fact.policy)
        else:
            try:
                reaction = self.repository.get(fact.originator_id)
            except AggregateNotFoundError:
                log.error("event=unknown_session session=%s fact=%s",
                          fact.originator_id, type(fact).__name__)
                return
        owns_room = self.open_rooms.get(reaction.room, set()) <= {reaction.id}
        react(reaction, fact, self.settings, owns_room)
        processing_event.collect_events(reaction)
        self._index(reaction)


def reactions_env(sessions_env: Mapping[str, str]) -> dict[str, str]:
    """The process manager's store: on PostgreSQL its own tables (reactions_events,
    reactions_tracking) beside the sessions'; on SQLite, whose recorders share fixed table
    names, a sibling file (clara-es.db -> clara-es.reactions.db)."""
    env = dict(sessions_env)
    if "SQLITE_DBNAME" in env:
        db = env["SQLITE_DBNAME"]
        stem, dot, suffix = db.rpartition(".")
        env["SQLITE_DBNAME"] = f"{stem}.reactions.{suffix}" if dot and "/" not in suffix \
            else f"{db}.reactions"
    return env
