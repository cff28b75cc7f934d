"""Attempt counts per session: outages, reconnect attempts, recoveries, failures, restarts."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from projections.schema import metadata, session_id_column, tracking_table
from projections.sql import Insert, Sql
from projections.view import Change, View

# Event type (class name) -> the counter it adds one to. Other types count nothing.
COUNTERS = {
    "Disconnected": "outages",
    "ReconnectAttempted": "reconnect_attempts",
    "ReconnectAttemptFailed": "failed_attempts",
    "Reconnected": "reconnects",
    "Failed": "failures",
    "PipelineRestarted": "pipeline_restarts",
}


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


attempt_counts_table = sa.Table(
    "attempt_counts",
    metadata,
    session_id_column(),
    *(_counter(name) for name in COUNTERS.values()),
)


def start(insert: Insert) -> sa.Executable:
    t = attempt_counts_table
    return insert(t).values(session_id=sa.bindparam("session_id")).on_conflict_do_nothing()


def increment(column: str) -> Callable[[Insert], sa.Executable]:
    """The session's row with one more in `column` (a row is made for its first one)."""
    def build(insert: Insert) -> sa.Executable:
        t = attempt_counts_table
        stmt = insert(t).values({"session_id": sa.bindparam("session_id"), column: 1})
        return stmt.on_conflict_do_update(
            index_elements=[t.c.session_id], set_={column: t.c[column] + 1}
        )

    return build


INCREMENT = {column: increment(column) for column in COUNTERS.values()}


class AttemptCountsView(View):
    name = "attempt_counts"
    tables = (attempt_counts_table,)
    tracking = tracking_table(name)

    def apply(self, db: Sql, change: Change) -> None:
        column = COUNTERS.get(change.type)
        if column is not None:
            db.run(INCREMENT[column], session_id=change.session_id)
        elif change.type == "SessionStarted":
            db.run(start, session_id=change.session_id)
