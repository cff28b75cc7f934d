"""Dashboard stats: the few rows per session and per outage the dashboard aggregates.

Sessions by state, recovery rate, time to recover, failures per hour and per room, and the
orphan check (a failed or ended session with no SessionCleanedUp or CleanupSkipped event)
are all read from these tables by `projections.queries.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from clara_es.domain.events import (
    CleanupSkipped,
    Failed,
    Reconnected,
    SessionCleanedUp,
    SessionEnded,
    SessionEvent,
    SessionStarted,
)
from clara_es.domain.state import ConnectionState
from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Insert, Sql
from projections.view import Logged, Row, Rows, View, after, utc

FINAL = (Failed, SessionEnded)
CLEANED_UP = (SessionCleanedUp, CleanupSkipped)

stats_sessions = sa.Table(
    "stats_sessions",
    metadata,
    session_id_column(),
    sa.Column("room", sa.String(200), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("recovered", sa.Boolean, nullable=False),
    timestamp("started_at"),
    timestamp("final_at", nullable=True),
    timestamp("cleaned_up_at", nullable=True),
)

stats_recoveries = sa.Table(
    "stats_recoveries",
    metadata,
    session_id_column(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("room", sa.String(200), nullable=False),
    timestamp("recovered_at"),
    sa.Column("outage_ms", sa.BigInteger, nullable=False),
)

stats_failures = sa.Table(
    "stats_failures",
    metadata,
    session_id_column(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("room", sa.String(200), nullable=False, index=True),
    timestamp("failed_at", index=True),
)


def upsert(insert: Insert) -> sa.Executable:
    t = stats_sessions
    stmt = insert(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.session_id],
        set_={c.name: stmt.excluded[c.name] for c in t.c if not c.primary_key},
    )




class StatsView(View):
    name = "stats"
    tables = (stats_sessions, stats_recoveries, stats_failures)
    tracking = tracking_table(name)

    def __init__(self) -> None:
        self.rows = Rows(stats_sessions)

    def apply(self, db: Sql, batch: Sequence[Logged]) -> None:
        rows = self.rows
        rows.load(db, batch)
        changed: dict[str, Row] = {}
        recoveries: list[Row] = []
        failures: list[Row] = []
        for _, event, session_id in batch:
            at = utc(event.timestamp)
            row = rows.get(session_id)
            new: Row | None = None
            if isinstance(event, SessionStarted):
                new = {
                    "session_id": session_id, "room": event.room,
                    "state": after(event).state.value, "recovered": False, "started_at": at,
                    "final_at": None, "cleaned_up_at": None,
                }
            elif row is not None:
                new = _changed(row, event, at)
            if new is not None and new != row:
                rows.put(session_id, new)
                changed[session_id] = row = new
            if isinstance(event, Reconnected | Failed):
                key = {"session_id": session_id, "version": event.originator_version,
                       "room": row["room"] if row is not None else ""}
                if isinstance(event, Reconnected):
                    recoveries.append({**key, "recovered_at": at, "outage_ms": event.outage_ms})
                else:
                    failures.append({**key, "failed_at": at})
        db.many(upsert, list(changed.values()))
        db.insert(stats_recoveries, recoveries)
        db.insert(stats_failures, failures)
        rows.trim()

    def forget(self) -> None:
        self.rows.clear()


def _changed(row: Row, event: Any, at: datetime | None) -> Row:
    """The session's row after `event` (a new dict: the old one may be in a rolled-back
    transaction's memory)."""
    row = dict(row)
    if isinstance(event, SessionEvent):
        row["state"] = ConnectionState(after(event, state=row["state"]).state).value
    if isinstance(event, FINAL):
        row["final_at"] = row["final_at"] or at
    elif isinstance(event, CLEANED_UP):
        row["cleaned_up_at"] = row["cleaned_up_at"] or at
    if isinstance(event, Reconnected):
        row["recovered"] = True
    return row
