"""One catch-up batch of the process manager, written in a few statements instead of a few
per fact.

The decision table's row changes for every fact of the batch are reduced in memory, in log
order, to their net effect per row: a due-work row is upserted, deleted, or (a timer fired
whose row this batch never saw) deleted if it still carries the timer's id; a session's room
row is deleted, inserted, or both. The rows are keyed, so the order of the final statements
between different rows does not matter; within one row the reduction keeps the meaning the
changes had one by one.

The questions a rule asks (`Facts`) see the batch's own changes first: a session that started
in this batch is folded from the batch's events, a room's sessions are the rows at the start
of the batch (read once per room) overlaid with the batch's joins and leaves.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from sqlalchemy.dialects import postgresql, sqlite

from clara_es.application import VoiceSessions
from clara_es.domain.events import CleanupRequested
from clara_es.domain.session import VoiceSession
from clara_es.process.decisions import TIMERS, Change, Clear, Fired, Join, Leave, Set
from clara_es.process.sql import Params, Sql
from clara_es.process.tables import by_key, due_rooms, due_work, sessions_of

# Keys per statement (bound parameters stay far below SQLite's limit).
CHUNK = 500


class PendingRows:
    """The net row changes of a batch, written by `write` in one transaction."""

    def __init__(self) -> None:
        # (session, kind) -> the row to put, or None to delete it
        self.work: dict[tuple[str, str], dict[str, Any] | None] = {}
        # (session, timer id) fired while that session's timer rows were not yet in `work`
        self.fired: set[tuple[str, str]] = set()
        # session -> the room it joined (None: it left); `left`: every session that left
        self.rooms: dict[str, str | None] = {}
        self.left: set[str] = set()
        self.earliest_due: datetime | None = None  # of the rows `write` put

    def add(self, session_id: UUID, changes: Iterable[Change], utc: Any) -> None:
        sid = str(session_id)
        for change in changes:
            match change:
                case Set(kind, job_id, due_at, args):
                    self.work[(sid, kind)] = {"session_id": sid, "kind": kind, "job_id": job_id,
                                              "due_at": utc(due_at), "args": args}
                case Clear(kind, _why):
                    self.work[(sid, kind)] = None
                case Fired(job_id):
                    for kind in TIMERS:
                        row = self.work.get((sid, kind))
                        if row is not None and row["job_id"] == job_id:
                            self.work[(sid, kind)] = None
                    if any((sid, kind) not in self.work for kind in TIMERS):
                        # Rows this batch did not touch: only the stored row can carry the id.
                        # Deleted before the batch's own rows are written, so a row the batch
                        # put or deleted afterwards is unaffected.
                        self.fired.add((sid, job_id))
                case Join(room):
                    if self.rooms.get(sid) is None:  # a session keeps the room it joined
                        self.rooms[sid] = room
                case Leave():
                    self.rooms[sid] = None
                    self.left.add(sid)
                case _:
                    raise TypeError(f"no batched form for {change!r}")

    def write(self, conn: sa.Connection) -> None:
        for chunk in _chunks(sorted(self.fired)):
            _FIRED.run(conn, {"keys": chunk, "sessions": sessions_of(chunk),
                              "kinds": sorted(TIMERS)})
        gone = sorted(key for key, row in self.work.items() if row is None)
        for chunk in _chunks(gone):
            _GONE.run(conn, {"keys": chunk, "sessions": sessions_of(chunk)})
        put = [row for _key, row in sorted(self.work.items()) if row is not None]
        if put:
            _UPSERT.run_many(conn, put)
            self.earliest_due = min(row["due_at"] for row in put)
        for chunk in _chunks(sorted(self.left)):
            _LEFT.run(conn, {"sessions": chunk})
        joined = [{"session_id": s, "room": r} for s, r in sorted(self.rooms.items()) if r]
        _JOINED.run_many(conn, joined)


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _upsert(dialect: str) -> Any:
    stmt = _insert(dialect)(due_work)
    fresh = {c: stmt.excluded[c] for c in ("job_id", "due_at", "args")}
    return stmt.on_conflict_do_update(
        index_elements=[due_work.c.session_id, due_work.c.kind],
        set_={**fresh, "lease_owner": None, "lease_until": None, "tries": 0})


# Expanding IN lists: one statement whatever the batch's size.
_FIRED = Sql(sa.delete(due_work).where(
    due_work.c.kind.in_(sa.bindparam("kinds", expanding=True)), by_key(due_work.c.job_id)))
_GONE = Sql(sa.delete(due_work).where(by_key(due_work.c.kind)))
_LEFT = Sql(sa.delete(due_rooms).where(
    due_rooms.c.session_id.in_(sa.bindparam("sessions", expanding=True))))
_UPSERT = Sql(build=_upsert)
_JOINED = Sql(build=lambda dialect: _insert(dialect)(due_rooms).on_conflict_do_nothing())
_ROOMS = Sql(sa.select(due_rooms.c.session_id, due_rooms.c.room).where(
    due_rooms.c.room.in_(sa.bindparam("rooms", expanding=True))))


class Reads(Protocol):
    def rows(self, statement: Sql, params: Params) -> Iterable[tuple[Any, ...]]: ...


class BatchFacts:
    """What the decision table may ask, answered inside the catch-up's transaction, with the
    batch's own facts and row changes taken into account."""

    def __init__(
        self, conn: Reads, sessions: VoiceSessions, pending: PendingRows,
        events: Sequence[Any],
    ) -> None:
        self.conn = conn
        self.sessions = sessions
        self.pending = pending
        self.events: dict[UUID, list[Any]] = {}
        for event in events:
            self.events.setdefault(event.originator_id, []).append(event)
        self.members: dict[str, set[str]] = {}  # room -> sessions with a row at batch start
        self._read_rooms({e.room for e in events if isinstance(e, CleanupRequested)})

    def session_at(self, session_id: UUID, version: int) -> VoiceSession:
        events = self.events.get(session_id, [])
        if events and events[0].originator_version == 1:  # started in this batch
            session = None
            for event in events:
                if event.originator_version > version:
                    break
                session = event.mutate(session)
            if session is not None and session.version == version:
                return session
        return self._latest_if(session_id, version) or self.sessions.session(
            session_id, version=version)

    def _latest_if(self, session_id: UUID, version: int) -> VoiceSession | None:
        """The session from the application's cache (brought up to date), if its latest
        version is `version`: usually so when the catch-up follows the commands closely, and
        far cheaper than a replay of the stream up to a version. Copied, since another thread
        may bring the cached one forward while a rule reads it."""
        try:
            latest = self.sessions.repository.get(session_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None
        if latest.version != version:
            return None
        session: VoiceSession = copy.deepcopy(latest)
        return session if session.version == version else None

    def room_used_by_others(self, room: str, session_id: UUID) -> bool:
        sid = str(session_id)
        if any(r == room and s != sid for s, r in self.pending.rooms.items()):
            return True
        if room not in self.members:
            self._read_rooms({room})
        return any(s != sid and s not in self.pending.left for s in self.members[room])

    def _read_rooms(self, rooms: set[str]) -> None:
        for chunk in _chunks(sorted(rooms - self.members.keys())):
            for room in chunk:
                self.members[room] = set()
            for session, room in self.conn.rows(_ROOMS, {"rooms": chunk}):
                self.members[room].add(session)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]
