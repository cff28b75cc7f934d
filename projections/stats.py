"""Dashboard stats: the few rows per session and per outage the dashboard aggregates.

Sessions by state, recovery rate, time to recover, failures per hour and per room, and the
orphan check (a failed or ended session with no SessionCleanedUp or CleanupSkipped event)
are all read from these tables by `projections.queries.stats`.
"""

from __future__ import annotations

import sqlalchemy as sa

from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Sql, bound
from projections.view import Change, View

FINAL = ("Failed", "SessionEnded")
CLEANED_UP = ("SessionCleanedUp", "CleanupSkipped")

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


def _set(column: str, *where: sa.ColumnElement[bool]) -> sa.Update:
    t = stats_sessions
    return sa.update(t).where(t.c.session_id == sa.bindparam("session_id"), *where).values(
        bound(column)
    )


START = sa.insert(stats_sessions).values(
    bound("session_id", "room", "state", "recovered", "started_at")
)
STATE = _set("state")
RECOVERED = _set("recovered")
FINAL_AT = _set("final_at", stats_sessions.c.final_at.is_(None))
CLEANED_UP_AT = _set("cleaned_up_at", stats_sessions.c.cleaned_up_at.is_(None))
RECOVERY = sa.insert(stats_recoveries)
FAILURE = sa.insert(stats_failures)


class StatsView(View):
    name = "stats"
    tables = (stats_sessions, stats_recoveries, stats_failures)
    tracking = tracking_table(name)

    def apply(self, db: Sql, change: Change) -> None:
        key = {"session_id": change.session_id}
        at = change.occurred_at
        session = change.session
        if session is not None:
            if change.type == "SessionStarted":
                db.run(START, room=session.room, state=session.state, recovered=False,
                       started_at=at, **key)
            else:
                db.run(STATE, state=session.state, **key)
        if change.type in FINAL:
            db.run(FINAL_AT, final_at=at, **key)
        elif change.type in CLEANED_UP:
            db.run(CLEANED_UP_AT, cleaned_up_at=at, **key)
        room = session.room if session is not None else ""
        if change.type == "Reconnected":
            db.run(RECOVERED, recovered=True, **key)
            outage_ms = int(change.details.get("outage_ms", 0))
            db.run(RECOVERY, version=change.version, room=room, recovered_at=at,
                   outage_ms=outage_ms, **key)
        elif change.type == "Failed":
            db.run(FAILURE, version=change.version, room=room, failed_at=at, **key)
