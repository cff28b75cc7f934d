"""The due-work table, kept from the session streams and claimed by any worker.

`ProcessManager.catch_up` reads the sessions' log after its tracking position in batches; for
each batch it applies the decision table's row changes and moves the position in ONE
transaction, so every fact changes the rows exactly once, whichever process applies it. The
tracking row is taken with `FOR UPDATE SKIP LOCKED`: while one process catches up, the others
skip ahead to their due work instead of queueing behind it.

`DueWork.claim` takes due rows (`due_at <= now`, index on due_at) whose lease is free or
expired, with `FOR UPDATE SKIP LOCKED`, and leases them to this worker: a worker that dies
leaves its jobs to whoever claims them once their lease ends. Nothing here is read at start:
start-up costs the same whatever the history.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import PersistenceError
from sqlalchemy.dialects import postgresql, sqlite

from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain.events import SessionEvent
from clara_es.domain.session import VoiceSession
from clara_es.process.decisions import TIMERS, Change, Clear, Fired, Join, Leave, Set, react
from clara_es.process.tables import due_rooms, due_tracking, due_work

log = logging.getLogger("clara_es.process")

LEADER = "VoiceSessions"
BATCH = 500


def utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _insert(conn: sa.Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


@dataclass(frozen=True)
class Job:
    session_id: UUID
    kind: str
    id: str
    args: dict[str, Any]
    due_at: datetime
    tries: int = 0


@dataclass(frozen=True)
class Backlog:
    """Due work not being worked on: how many jobs, how overdue the oldest (seconds), and
    how many facts the rows are behind the sessions' log."""

    jobs: int
    oldest_overdue_s: float
    facts_behind: int


def backlog(engine: sa.Engine, now: datetime, head: int | None = None) -> Backlog:
    now = utc(now)
    free = sa.or_(due_work.c.lease_until.is_(None), due_work.c.lease_until <= now)
    query = sa.select(sa.func.count(), sa.func.min(due_work.c.due_at)).where(
        due_work.c.due_at <= now, free)
    position = sa.select(due_tracking.c.notification_id).where(
        due_tracking.c.application_name == LEADER)
    with engine.connect() as conn:
        count, oldest = conn.execute(query).one()
        applied = conn.execute(position).scalar() or 0
    age = (now - utc(oldest)).total_seconds() if oldest is not None else 0.0
    behind = max((head or 0) - applied, 0)
    return Backlog(int(count), max(age, 0.0), behind)


class _StoreFacts:
    """What the decision table may ask, answered inside the catch-up's transaction."""

    def __init__(self, conn: sa.Connection, sessions: VoiceSessions) -> None:
        self.conn = conn
        self.sessions = sessions

    def session_at(self, session_id: UUID, version: int) -> VoiceSession:
        return self.sessions.session(session_id, version=version)

    def room_used_by_others(self, room: str, session_id: UUID) -> bool:
        query = sa.select(due_rooms.c.session_id).where(
            due_rooms.c.room == room, due_rooms.c.session_id != str(session_id)
        ).limit(1)
        return self.conn.execute(query).first() is not None


def apply(conn: sa.Connection, session_id: UUID, changes: Iterable[Change]) -> None:
    sid = str(session_id)
    mine = due_work.c.session_id == sid
    for change in changes:
        match change:
            case Set(kind, job_id, due_at, args):
                row = {"session_id": sid, "kind": kind, "job_id": job_id,
                       "due_at": utc(due_at), "args": args}
                fresh = {"job_id": job_id, "due_at": utc(due_at), "args": args,
                         "lease_owner": None, "lease_until": None, "tries": 0}
                conn.execute(_insert(conn)(due_work).values(row).on_conflict_do_update(
                    index_elements=[due_work.c.session_id, due_work.c.kind], set_=fresh))
            case Clear(kind, _why):
                conn.execute(sa.delete(due_work).where(mine, due_work.c.kind == kind))
            case Fired(job_id):
                # Only the timer: an effect's request id is the id of the timer that asked.
                conn.execute(sa.delete(due_work).where(
                    mine, due_work.c.job_id == job_id, due_work.c.kind.in_(sorted(TIMERS))))
            case Join(room):
                conn.execute(_insert(conn)(due_rooms).values(session_id=sid, room=room)
                             .on_conflict_do_nothing())
            case Leave():
                conn.execute(sa.delete(due_rooms).where(due_rooms.c.session_id == sid))


class ProcessManager:
    """Keeps the due-work rows from the session facts, exactly once (rows + position)."""

    def __init__(self, sessions: VoiceSessions, engine: sa.Engine, settings: Settings) -> None:
        self.sessions = sessions
        self.engine = engine
        self.settings = settings
        self.batch = BATCH
        with engine.begin() as conn:
            conn.execute(_insert(conn)(due_tracking)
                         .values(application_name=LEADER, notification_id=0)
                         .on_conflict_do_nothing())

    def position(self) -> int:
        with self.engine.connect() as conn:
            query = sa.select(due_tracking.c.notification_id).where(
                due_tracking.c.application_name == LEADER)
            return int(conn.execute(query).scalar() or 0)

    def catch_up(self) -> int:
        """Apply every fact after the position, a batch per transaction; the facts applied
        (0 also when another process is applying them right now)."""
        total = 0
        while True:
            applied = self._batch()
            total += applied
            if applied < self.batch:
                return total

    def _batch(self) -> int:
        with self.engine.begin() as conn:
            position = conn.execute(
                sa.select(due_tracking.c.notification_id)
                .where(due_tracking.c.application_name == LEADER)
                .with_for_update(skip_locked=True)
            ).scalar()
            if position is None:  # another process holds the position: it applies them
                return 0
            notifications = self.sessions.recorder.select_notifications(
                start=position, limit=self.batch, inclusive_of_start=False
            )
            if not notifications:
                return 0
            facts = _StoreFacts(conn, self.sessions)
            for notification in notifications:
                fact = self.sessions.mapper.to_domain_event(notification)
                if isinstance(fact, SessionEvent):
                    apply(conn, fact.originator_id, self._react(fact, facts))
            conn.execute(
                sa.update(due_tracking)
                .where(due_tracking.c.application_name == LEADER)
                .values(notification_id=notifications[-1].id)
            )
            return len(notifications)

    def _react(self, fact: SessionEvent, facts: _StoreFacts) -> list[Change]:
        """The fact's row changes. A fact no rule can decide on is logged and passed over:
        one bad fact must not stop the timers of every other session behind it."""
        try:
            return react(fact, facts, self.settings)
        except (sa.exc.SQLAlchemyError, PersistenceError, OSError):
            raise  # the store: the batch is tried again
        except Exception:
            log.exception("event=decision_failed session=%s version=%s fact=%s",
                          fact.originator_id, fact.originator_version, type(fact).__name__)
            return []

    def close(self) -> None:
        self.engine.dispose()


class DueWork:
    """Claiming, finishing and measuring the due rows, for one worker (`owner`)."""

    def __init__(self, engine: sa.Engine, owner: str, lease: timedelta) -> None:
        self.engine = engine
        self.owner = owner
        self.lease = lease

    def claim(self, now: datetime, kinds: Iterable[str], limit: int) -> list[Job]:
        """Lease up to `limit` due jobs of `kinds`, the most overdue first."""
        now = utc(now)
        free = sa.or_(due_work.c.lease_until.is_(None), due_work.c.lease_until <= now)
        query = (
            sa.select(due_work)
            .where(due_work.c.due_at <= now, due_work.c.kind.in_(list(kinds)), free)
            .order_by(due_work.c.due_at, due_work.c.session_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    sa.update(due_work)
                    .where(self._keys([(r.session_id, r.kind) for r in rows]))
                    .values(lease_owner=self.owner, lease_until=now + self.lease,
                            tries=due_work.c.tries + 1)
                )
        return [Job(UUID(r.session_id), r.kind, r.job_id, dict(r.args), utc(r.due_at),
                    r.tries + 1) for r in rows]

    def done(self, job: Job) -> None:
        """The job ran: its row goes (the fact it led to would clear it on catch-up too)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(due_work).where(self._mine(job)))

    def retry_at(self, job: Job, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(due_work).where(self._mine(job)).values(lease_until=utc(at)))

    def renew(self, jobs: Sequence[Job], now: datetime) -> None:
        """Keep the leases of jobs still running, so nobody takes them over."""
        if not jobs:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(due_work)
                .where(self._keys([(str(j.session_id), j.kind) for j in jobs]),
                       due_work.c.lease_owner == self.owner)
                .values(lease_until=utc(now) + self.lease)
            )

    def next_due(self) -> datetime | None:
        """When the next job can be claimed: its due time, or its lease's end."""
        ready = sa.func.min(due_work.c.due_at).filter(due_work.c.lease_until.is_(None))
        leased = sa.func.min(sa.case(
            (due_work.c.lease_until > due_work.c.due_at, due_work.c.lease_until),
            else_=due_work.c.due_at,
        )).filter(due_work.c.lease_until.is_not(None))
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(ready, leased)).one()
        times = [utc(t) for t in row if t is not None]
        return min(times, default=None)

    def backlog(self, now: datetime) -> Backlog:
        return backlog(self.engine, now)

    def _mine(self, job: Job) -> sa.ColumnElement[bool]:
        return sa.and_(due_work.c.session_id == str(job.session_id),
                       due_work.c.kind == job.kind, due_work.c.job_id == job.id,
                       due_work.c.lease_owner == self.owner)

    @staticmethod
    def _keys(keys: list[tuple[str, str]]) -> sa.ColumnElement[bool]:
        return sa.tuple_(due_work.c.session_id, due_work.c.kind).in_(keys)
