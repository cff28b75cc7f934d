"""UI state per session: what the status light and the Start Session button show."""

from __future__ import annotations

import sqlalchemy as sa

from clara_es.domain import ui_state
from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Insert, Sql
from projections.view import Change, View

ui_state_table = sa.Table(
    "ui_state",
    metadata,
    session_id_column(),
    sa.Column("room", sa.String(200), nullable=False, index=True),
    sa.Column("participant", sa.String(200), nullable=False, index=True),
    sa.Column("connection_state", sa.String(16), nullable=False, index=True),
    sa.Column("status_text", sa.Text, nullable=False),
    sa.Column("start_enabled", sa.Boolean, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    timestamp("next_retry_at", nullable=True),
    timestamp("updated_at"),
    sa.Column("version", sa.Integer, nullable=False),
)


def upsert(insert: Insert) -> sa.Executable:
    """The session's row as it is now, inserted or replaced."""
    t = ui_state_table
    stmt = insert(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.session_id],
        set_={c.name: stmt.excluded[c.name] for c in t.c if not c.primary_key},
    )


class UIStateView(View):
    name = "ui_state"
    tables = (ui_state_table,)
    tracking = tracking_table(name)

    def apply(self, db: Sql, change: Change) -> None:
        if change.session is None:
            return
        state = ui_state(change.session)
        db.run(upsert, **state.model_dump())
