"""The four views (ui_state, attempt_counts, history, stats) and one tracking table each."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None

VIEWS = ("ui_state", "attempt_counts", "history", "stats")
COUNTERS = (
    "outages", "reconnect_attempts", "failed_attempts", "reconnects", "failures",
    "pipeline_restarts",
)


def _session_id() -> sa.Column:
    return sa.Column("session_id", sa.String(36), nullable=False)


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def _event_rows(table: str, at: str, *columns: sa.Column) -> None:
    """A table of one row per session event (session_id, version): its room and time first."""
    op.create_table(
        table,
        _session_id(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("room", sa.String(200), nullable=False),
        _time(at),
        *columns,
        sa.PrimaryKeyConstraint("session_id", "version"),
    )


def upgrade() -> None:
    for view in VIEWS:
        op.create_table(
            f"{view}_tracking",
            sa.Column("application_name", sa.Text, nullable=False),
            sa.Column("notification_id", sa.BigInteger, nullable=True),
            sa.PrimaryKeyConstraint("application_name"),
        )
    op.create_table(
        "ui_state",
        _session_id(),
        sa.Column("room", sa.String(200), nullable=False),
        sa.Column("participant", sa.String(200), nullable=False),
        sa.Column("connection_state", sa.String(16), nullable=False),
        sa.Column("status_text", sa.Text, nullable=False),
        sa.Column("start_enabled", sa.Boolean, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        _time("next_retry_at", nullable=True),
        _time("updated_at"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    _indexes("ui_state", "room", "participant", "connection_state")
    op.create_table(
        "attempt_counts",
        _session_id(),
        *(sa.Column(c, sa.Integer, nullable=False, server_default="0") for c in COUNTERS),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_table(
        "history",
        _session_id(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("notification_id", sa.BigInteger, nullable=False),
        sa.Column("room", sa.String(200), nullable=False),
        sa.Column("participant", sa.String(200), nullable=False),
        _time("occurred_at"),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "version"),
        sa.UniqueConstraint("notification_id"),
    )
    _indexes("history", "room", "participant", "occurred_at", "type")
    op.create_table(
        "stats_sessions",
        _session_id(),
        sa.Column("room", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("recovered", sa.Boolean, nullable=False),
        _time("started_at"),
        _time("final_at", nullable=True),
        _time("cleaned_up_at", nullable=True),
        sa.PrimaryKeyConstraint("session_id"),
    )
    _indexes("stats_sessions", "room", "state")
    _event_rows(
        "stats_recoveries", "recovered_at", sa.Column("outage_ms", sa.BigInteger, nullable=False)
    )
    _event_rows("stats_failures", "failed_at")
    _indexes("stats_failures", "room", "failed_at")


def downgrade() -> None:
    for table in ("stats_failures", "stats_recoveries", "stats_sessions", "history",
                  "attempt_counts", "ui_state"):
        op.drop_table(table)
    for view in VIEWS:
        op.drop_table(f"{view}_tracking")
