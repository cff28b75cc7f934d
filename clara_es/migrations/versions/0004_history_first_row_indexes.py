"""The history's room and participant indexed on each session's first row only (a partial
index, WHERE version = 1): a filter by room or participant finds the sessions there, then
their rows by the primary key. Two indexes of every event's row became two of one row per
session, which a rebuild no longer maintains for every event it writes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"

FIRST_ROW = "version = 1"


def upgrade() -> None:
    for column in ("room", "participant"):
        op.drop_index(f"ix_history_{column}", table_name="history")
        op.create_index(
            f"ix_history_first_{column}", "history", [column],
            sqlite_where=sa.text(FIRST_ROW), postgresql_where=sa.text(FIRST_ROW),
        )


def downgrade() -> None:
    for column in ("room", "participant"):
        op.drop_index(f"ix_history_first_{column}", table_name="history")
        op.create_index(f"ix_history_{column}", "history", [column])
