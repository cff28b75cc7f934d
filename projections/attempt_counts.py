"""Attempt counts per session: outages, reconnect attempts, recoveries, failures, restarts."""

from __future__ import annotations

import sqlalchemy as sa

from projections.schema import metadata, session_id_column, tracking_table
from projections.sql import Sql
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

START = "INSERT INTO {attempt_counts} (session_id) VALUES (:session_id) ON CONFLICT DO NOTHING"
INCREMENT = {
    column: f"""
INSERT INTO {{attempt_counts}} AS c (session_id, {column}) VALUES (:session_id, 1)
ON CONFLICT (session_id) DO UPDATE SET {column} = c.{column} + 1
"""
    for column in COUNTERS.values()
}


class AttemptCountsView(View):
    name = "attempt_counts"
    tables = (attempt_counts_table,)
    tracking = tracking_table(name)

    def apply(self, db: Sql, change: Change) -> None:
        column = COUNTERS.get(change.type)
        if column is not None:
            db.run(INCREMENT[column], session_id=change.session_id)
        elif change.type == "SessionStarted":
            db.run(START, session_id=change.session_id)
