"""The process manager's due work: timers and pending effects as rows, the rooms of open
sessions, and the position in the sessions' log they are kept up to."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "due_work",
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        _time("due_at"),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _time("lease_until", nullable=True),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("session_id", "kind"),
    )
    op.create_index("ix_due_work_due_at", "due_work", ["due_at"])
    op.create_table(
        "due_rooms",
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("room", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_due_rooms_room", "due_rooms", ["room"])
    op.create_table(
        "due_tracking",
        sa.Column("application_name", sa.Text, nullable=False),
        sa.Column("notification_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("application_name"),
    )


def downgrade() -> None:
    for table in ("due_tracking", "due_rooms", "due_work"):
        op.drop_table(table)
