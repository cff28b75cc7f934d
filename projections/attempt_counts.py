"""Attempt counts per session: outages, reconnect attempts, recoveries, failures, restarts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clara_es.domain.events import (
    Disconnected,
    Failed,
    PipelineRestarted,
    ReconnectAttempted,
    ReconnectAttemptFailed,
    Reconnected,
    SessionEvent,
    SessionStarted,
)
from projections.schema import metadata, session_id_column, tracking_table
from projections.sql import Sql
from projections.view import Logged, Row, View

# Event class -> the counter it adds one to. Other classes count nothing.
COUNTERS: dict[type[SessionEvent], str] = {
    Disconnected: "outages",
    ReconnectAttempted: "reconnect_attempts",
    ReconnectAttemptFailed: "failed_attempts",
    Reconnected: "reconnects",
    Failed: "failures",
    PipelineRestarted: "pipeline_restarts",
}
COLUMNS = tuple(COUNTERS.values())


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


attempt_counts_table = sa.Table(
    "attempt_counts",
    metadata,
    session_id_column(),
    *(_counter(name) for name in COLUMNS),
)


def add(stmt: Any) -> sa.Executable:
    """The batch's counts added to the session's row."""
    t = attempt_counts_table
    return stmt.on_conflict_do_update(
        index_elements=[t.c.session_id],
        set_={column: t.c[column] + stmt.excluded[column] for column in COLUMNS},
    )


class AttemptCountsView(View):
    """Counts are added in the database, so the view needs no copy of its rows."""

    name = "attempt_counts"
    tables = (attempt_counts_table,)
    tracking = tracking_table(name)

    def apply(self, db: Sql, batch: Sequence[Logged]) -> None:
        added: dict[str, Row] = {}
        for _, event, key in batch:
            column = COUNTERS.get(type(event))
            if column is None and not isinstance(event, SessionStarted):
                continue
            row = added.get(key)
            if row is None:
                row = added[key] = dict.fromkeys(COLUMNS, 0)
                row["session_id"] = key
            if column is not None:
                row[column] += 1
        db.upsert(attempt_counts_table, list(added.values()), add)
