"""Audit history: one row per stored event, of every type, queryable by session, room,
participant, time range and event type."""

from __future__ import annotations

import sqlalchemy as sa

from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Sql
from projections.view import Change, View

history_table = sa.Table(
    "history",
    metadata,
    session_id_column(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("notification_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("room", sa.String(200), nullable=False, index=True),
    sa.Column("participant", sa.String(200), nullable=False, index=True),
    timestamp("occurred_at", index=True),
    sa.Column("type", sa.String(64), nullable=False, index=True),
    sa.Column("actor", sa.String(16), nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
)

INSERT = sa.insert(history_table)
WHO = sa.select(history_table.c.room, history_table.c.participant).where(
    history_table.c.session_id == sa.bindparam("session_id"), history_table.c.version == 1
)


class HistoryView(View):
    name = "history"
    tables = (history_table,)
    tracking = tracking_table(name)

    def apply(self, db: Sql, change: Change) -> None:
        if change.session is not None:
            who = {"room": change.session.room, "participant": change.session.participant}
        else:
            who = db.one(WHO, session_id=change.session_id) or {"room": "", "participant": ""}
        db.run(
            INSERT,
            session_id=change.session_id,
            version=change.version,
            notification_id=change.notification_id,
            occurred_at=change.occurred_at,
            type=change.type,
            actor=change.actor,
            cause=change.cause,
            details=change.details,
            **who,
        )
