"""Audit history: one row per stored event, of every type, queryable by session, room,
participant, time range and event type."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from clara_es.application.records import event_details, event_type
from clara_es.domain.events import SessionStarted
from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Sql, json_text
from projections.view import Logged, Rows, View, utc

history_table = sa.Table(
    "history",
    metadata,
    session_id_column(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("notification_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("room", sa.String(200), nullable=False),
    sa.Column("participant", sa.String(200), nullable=False),
    timestamp("occurred_at", index=True),
    sa.Column("type", sa.String(64), nullable=False, index=True),
    sa.Column("actor", sa.String(16), nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
)
# Every row of a session carries its first row's room and participant, so these are indexed
# on first rows only (`sessions_where`): one index entry per session, not per event.
FIRST_ROW = sa.text("version = 1")
for _column in ("room", "participant"):
    sa.Index(f"ix_history_first_{_column}", history_table.c[_column],
             sqlite_where=FIRST_ROW, postgresql_where=FIRST_ROW)


def sessions_where(column: str, value: str) -> sa.ColumnElement[bool]:
    """History rows of the sessions whose `column` (room or participant) is `value`: their
    first rows by the partial index, then their rows by the primary key. The `1` is literal,
    as in the index's own condition: with a bound parameter the database could not use it."""
    first = history_table.alias("first_rows")
    sessions = sa.select(first.c.session_id).where(
        first.c.version == sa.literal_column("1"), first.c[column] == value
    )
    return history_table.c.session_id.in_(sessions.scalar_subquery())

class HistoryView(View):
    name = "history"
    tables = (history_table,)
    tracking = tracking_table(name)

    def __init__(self) -> None:
        # Each session's room and participant: its first row's.
        self.first = Rows(history_table, history_table.c.version == 1)

    def apply(self, db: Sql, batch: Sequence[Logged]) -> None:
        first = self.first
        first.load(db, batch)
        db.insert_tuples(history_table, self._rows(batch), len(batch))
        first.trim()

    def _rows(self, batch: Sequence[Logged]) -> Iterator[tuple[Any, ...]]:
        """Each event's row: record_fields' record, in the table's column order."""
        first = self.first
        for notification_id, event, session_id in batch:
            if isinstance(event, SessionStarted):
                who = {"room": event.room, "participant": event.participant}
                first.put(session_id, who)
            else:
                who = first.get(session_id) or NOBODY
            yield (
                session_id, event.originator_version, notification_id, who["room"],
                who["participant"], utc(event.timestamp), event_type(event),
                getattr(event, "actor", ""), json_text(getattr(event, "cause", {})),
                json_text(event_details(event)),
            )

    def forget(self) -> None:
        self.first.clear()


NOBODY = {"room": "", "participant": ""}
