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
from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Sql
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
                    "state": str(after(event).state), "recovered": False, "started_at": at,
                    "final_at": None, "cleaned_up_at": None,
                }
            elif row is not None:
                new = _changed(row, event, at)
            if new is not None:
                rows.put(session_id, new)
                changed[session_id] = row = new
            if isinstance(event, Reconnected | Failed):
                key = {"session_id": session_id, "version": event.originator_version,
                       "room": row["room"] if row is not None else ""}
                if isinstance(event, Reconnected):
                    recoveries.append({**key, "recovered_at": at, "outage_ms": event.outage_ms})
                else:
                    failures.append({**key, "failed_at": at})
        db.upsert(stats_sessions, list(changed.values()))
        db.insert(stats_recoveries, recoveries)
        db.insert(stats_failures, failures)
        rows.trim()

    def forget(self) -> None:
        self.rows.clear()


def _changed(row: Row, event: Any, at: datetime | None) -> Row | None:
    """The session's row after `event`, or None if the event changes nothing in it (a new
    dict: the old one may be in a rolled-back transaction's memory)."""
    changes: Row = {}
    if isinstance(event, SessionEvent):
        state = after(event, state=row["state"]).state
        if state != row["state"]:
            changes["state"] = str(state)
    if isinstance(event, FINAL) and row["final_at"] is None:
        changes["final_at"] = at
    elif isinstance(event, CLEANED_UP) and row["cleaned_up_at"] is None:
        changes["cleaned_up_at"] = at
    if isinstance(event, Reconnected) and not row["recovered"]:
        changes["recovered"] = True
    return {**row, **changes} if changes else None
