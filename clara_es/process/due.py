"""The due-work table, kept from the session streams and claimed by any worker.

`ProcessManager.catch_up` reads the sessions' log after its tracking position in batches; for
each batch it decides the row changes (reading, holding no lock), then writes them and moves the
position in ONE transaction, only if the position is still the one it read, so every fact
changes the rows exactly once, whichever process applies it. The changes of a batch are reduced
to their net effect and written in a few statements (`pending.PendingRows`), not one or two per
fact. The tracking row is taken with `FOR UPDATE SKIP LOCKED`: while one process writes, the
others skip ahead to their due work instead of queueing behind it.

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
from clara_es.process.decisions import Change, react
from clara_es.process.pending import BatchFacts, PendingRows
from clara_es.process.saved import SavedFacts
from clara_es.process.sql import Params, Sql
from clara_es.process.tables import by_key, due_tracking, due_work, sessions_of

log = logging.getLogger("clara_es.process")

LEADER = "VoiceSessions"
BATCH = 500
# Facts per catch-up transaction: their row changes are reduced and written together.
CATCH_UP_BATCH = 2000


def utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_POSITION_QUERY = sa.select(due_tracking.c.notification_id).where(
    due_tracking.c.application_name == LEADER)
_POSITION = Sql(_POSITION_QUERY)
_POSITION_LOCKED = Sql(_POSITION_QUERY.with_for_update(skip_locked=True))
_MOVE = Sql(sa.update(due_tracking).where(due_tracking.c.application_name == LEADER)
            .values(notification_id=sa.bindparam("position")))

_NOW = sa.bindparam("now", type_=due_work.c.due_at.type)
_UNTIL = sa.bindparam("until", type_=due_work.c.lease_until.type)
_CLAIM = Sql(
    sa.select(due_work.c.session_id, due_work.c.kind, due_work.c.job_id, due_work.c.args,
              due_work.c.due_at, due_work.c.tries)
    .where(due_work.c.due_at <= _NOW,
           due_work.c.kind.in_(sa.bindparam("kinds", expanding=True)),
           sa.or_(due_work.c.lease_until.is_(None), due_work.c.lease_until <= _NOW))
    .order_by(due_work.c.due_at, due_work.c.session_id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .with_for_update(skip_locked=True)
)
_LEASE = Sql(
    sa.update(due_work)
    .where(by_key(due_work.c.kind))
    .values(lease_owner=sa.bindparam("owner"), lease_until=_UNTIL, tries=due_work.c.tries + 1)
)
_DONE = Sql(sa.delete(due_work).where(
    by_key(due_work.c.kind, due_work.c.job_id), due_work.c.lease_owner == sa.bindparam("owner")))
_RENEW = Sql(
    sa.update(due_work)
    .where(by_key(due_work.c.kind), due_work.c.lease_owner == sa.bindparam("owner"))
    .values(lease_until=_UNTIL)
)
_RETRY = Sql(
    sa.update(due_work)
    .where(due_work.c.session_id == sa.bindparam("session"),
           due_work.c.kind == sa.bindparam("job_kind"), due_work.c.job_id == sa.bindparam("job"),
           due_work.c.lease_owner == sa.bindparam("owner"))
    .values(lease_until=_UNTIL)
)
_PEEK = 64
_FIRST_DUE = Sql(sa.select(due_work.c.due_at, due_work.c.lease_until)
                 .order_by(due_work.c.due_at).limit(sa.bindparam("n", type_=sa.Integer)))
_NEXT_DUE = Sql(sa.select(
    sa.func.min(due_work.c.due_at).filter(due_work.c.lease_until.is_(None)),
    sa.func.min(sa.case(
        (due_work.c.lease_until > due_work.c.due_at, due_work.c.lease_until),
        else_=due_work.c.due_at,
    )).filter(due_work.c.lease_until.is_not(None)),
))


class _Reader:
    """A read-only connection opened on first use: most batches ask the rows nothing."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.conn: sa.Connection | None = None

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def rows(self, statement: Sql, params: Params) -> Iterable[tuple[Any, ...]]:
        if self.conn is None:
            self.conn = self.engine.connect().execution_options(read_only=True)
        return statement.all(self.conn, params)


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
    with engine.connect() as conn:
        count, oldest = conn.execute(query).one()
        applied = conn.execute(_POSITION_QUERY).scalar() or 0
    age = (now - utc(oldest)).total_seconds() if oldest is not None else 0.0
    behind = max((head or 0) - applied, 0)
    return Backlog(int(count), max(age, 0.0), behind)


class ProcessManager:
    """Keeps the due-work rows from the session facts, exactly once (rows + position)."""

    def __init__(self, sessions: VoiceSessions, engine: sa.Engine, settings: Settings) -> None:
        self.sessions = sessions
        self.engine = engine
        self.settings = settings
        self.batch = BATCH
        self.catch_up_batch = CATCH_UP_BATCH
        self.known: int | None = None  # the position as this process last wrote or read it
        # The earliest due time of the rows put since its user last set it to None.
        self.earliest_due: datetime | None = None
        # The facts saved in this process, taken when they continue the position.
        self.saved = SavedFacts(sessions, keep=CATCH_UP_BATCH)
        self.read_to_head = False  # the last read of the log found its end
        with engine.begin() as conn:
            conn.execute(_insert(conn)(due_tracking)
                         .values(application_name=LEADER, notification_id=0)
                         .on_conflict_do_nothing())

    def position(self) -> int:
        with self.engine.connect() as conn:
            return int(_POSITION.scalar(conn) or 0)

    def catch_up(self) -> int:
        """Apply every fact after the position, a batch per transaction; the facts applied
        (0 also when another process is applying them right now)."""
        total = 0
        while True:
            applied, more = self._batch()
            total += applied
            if not more:
                return total

    def _batch(self) -> tuple[int, bool]:
        """Apply the next batch: how many facts, and whether the log may hold more."""
        # The position this process wrote last, if it did: positions only move forward, and
        # one another process moved is found out below (its facts follow ours in the log), so
        # it is read only when unknown.
        position = self.known if self.known is not None else self.position()
        sole_writer = self.sessions.sole_writer
        ids, events, saved_more = self.saved.after(position, self.catch_up_batch)
        if ids:
            # Saved after a gap (a failed append's id), or by another process, if any.
            more = saved_more or not sole_writer
        elif sole_writer and self.read_to_head and not self.saved.facts:
            return 0, False  # nothing saved since the last look, and nobody else appends
        else:
            # Decide first, reading the store without holding a write lock: on SQLite the
            # write lock is the file's, and a catch-up that waited for the application's
            # connections while holding it would deadlock with commands waiting for the lock.
            notifications = self.sessions.recorder.select_notifications(
                start=position, limit=self.catch_up_batch, inclusive_of_start=False
            )
            more = len(notifications) == self.catch_up_batch
            if not notifications:
                self.known, self.read_to_head = position, True
                return 0, False
            ids = [n.id for n in notifications]
            events = [self.sessions.mapper.to_domain_event(n) for n in notifications]
        pending = PendingRows()
        with _Reader(self.engine) as reader:
            facts = BatchFacts(reader, self.sessions, pending, events)
            for fact in events:
                if isinstance(fact, SessionEvent):
                    pending.add(fact.originator_id, self._react(fact, facts), utc)
        # Then write, if nobody applied these facts meanwhile (or is applying them now).
        with self.engine.begin() as conn:
            locked = _POSITION_LOCKED.scalar(conn)
            if locked != position:
                self.known = locked  # None: another process holds it; read it next time
                return 0, False
            pending.write(conn)
            _MOVE.run(conn, {"position": ids[-1]})
        self.known, self.read_to_head = ids[-1], not more
        if pending.earliest_due is not None and (
                self.earliest_due is None or pending.earliest_due < self.earliest_due):
            self.earliest_due = pending.earliest_due
        return len(ids), more

    def _react(self, fact: SessionEvent, facts: BatchFacts) -> list[Change]:
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
        self.saved.close()
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
        with self.engine.begin() as conn:
            rows = _CLAIM.all(conn, {"now": now, "kinds": sorted(kinds), "limit": limit})
            if rows:
                keys = [(session, kind) for session, kind, *_ in rows]
                _LEASE.run(conn, {"keys": keys, "sessions": sessions_of(keys),
                                  "owner": self.owner, "until": now + self.lease})
        return [Job(UUID(session), kind, job_id, dict(args), utc(due_at), tries + 1)
                for session, kind, job_id, args, due_at, tries in rows]

    def done(self, *jobs: Job) -> None:
        """The jobs ran: their rows go (the facts they led to would clear them on catch-up
        too), in one statement."""
        if not jobs:
            return
        keys = [(str(j.session_id), j.kind, j.id) for j in jobs]
        with self.engine.begin() as conn:
            _DONE.run(conn, {"keys": keys, "sessions": sessions_of(keys), "owner": self.owner})

    def retry_at(self, job: Job, at: datetime) -> None:
        with self.engine.begin() as conn:
            _RETRY.run(conn, {"session": str(job.session_id), "job_kind": job.kind, "job": job.id,
                              "owner": self.owner, "until": utc(at)})

    def renew(self, jobs: Sequence[Job], now: datetime) -> None:
        """Keep the leases of jobs still running, so nobody takes them over."""
        if not jobs:
            return
        keys = [(str(j.session_id), j.kind) for j in jobs]
        with self.engine.begin() as conn:
            _RENEW.run(conn, {"keys": keys, "sessions": sessions_of(keys),
                              "owner": self.owner, "until": utc(now) + self.lease})

    def next_due(self) -> datetime | None:
        """When the next job can be claimed: its due time, or its lease's end if that is
        later. Read from the first rows in due order (the due_at index, no scan): a row's time
        is never before its due_at, so once a row is due after the best time found, no later
        row can beat it. Only when every one of those rows is leased past the rest does it
        fall back to the whole table."""
        with self.engine.connect() as conn:
            best: datetime | None = None
            seen = 0
            # Row by row: usually the first row decides, the rest are not read.
            rows = _FIRST_DUE.rows(conn, {"n": _PEEK})
            try:
                for due_at, lease_until in rows:
                    seen += 1
                    due_at = utc(due_at)
                    if best is not None and due_at >= best:
                        return best
                    at = due_at if lease_until is None else max(due_at, utc(lease_until))
                    best = at if best is None else min(best, at)
            finally:
                rows.close()
            if seen < _PEEK:
                return best
            row = _NEXT_DUE.all(conn)[0]
        times = [utc(t) for t in row if t is not None]
        return min(times, default=None)

    def backlog(self, now: datetime) -> Backlog:
        return backlog(self.engine, now)

