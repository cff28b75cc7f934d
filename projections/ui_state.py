"""UI state per session: what the status light and the Start Session button show."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from clara_es.domain.events import SessionEvent, SessionStarted
from clara_es.domain.state import ConnectionState
from clara_es.domain.status import START_ENABLED, status_text
from projections.schema import metadata, session_id_column, timestamp, tracking_table
from projections.sql import Sql
from projections.view import Facts, Logged, Row, Rows, View, utc

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


class UIStateView(View):
    """Each session's facts stay in memory and each event changes them in place; a session's
    row is built once per batch, after its last event of the batch (an event's row depends
    only on the facts after it and on the event's own time and version)."""

    name = "ui_state"
    tables = (ui_state_table,)
    tracking = tracking_table(name)

    def __init__(self) -> None:
        self.facts: Rows[Facts] = Rows(ui_state_table, read=_facts)

    def apply(self, db: Sql, batch: Sequence[Logged]) -> None:
        kept = self.facts
        kept.load(db, batch)
        last: dict[str, SessionEvent] = {}
        for _, event, session_id in batch:
            if isinstance(event, SessionStarted):
                facts = Facts()
                kept.put(session_id, facts)
            elif not isinstance(event, SessionEvent) or (facts := kept.get(session_id)) is None:
                continue  # a type this code does not know changes nothing the UI shows
            event.apply_to(facts)
            last[session_id] = event
        rows = []
        for session_id, event in last.items():
            facts = kept.get(session_id)
            if facts is not None:
                rows.append(_row(session_id, event, facts))
        db.upsert(ui_state_table, rows)
        kept.trim()

    def forget(self) -> None:
        self.facts.clear()


def _facts(row: Row) -> Facts:
    """The facts of a stored row, for the next event to change."""
    facts = Facts()
    facts.__dict__.update(
        room=row["room"], participant=row["participant"], state=row["connection_state"],
        attempt=row["attempt"], next_retry_at=row["next_retry_at"],
        policy={"max_attempts": row["max_attempts"]},
    )
    return facts


def _row(session_id: str, event: SessionEvent, facts: Facts) -> Row:
    """What ui_state() shows of the session after `event` (clara_es/domain/status.py)."""
    state = ConnectionState(facts.state)
    max_attempts = int(facts.policy["max_attempts"])
    return {
        "session_id": session_id,
        "room": facts.room,
        "participant": facts.participant,
        "connection_state": state.value,
        "status_text": status_text(state, facts.attempt, max_attempts),
        "start_enabled": state in START_ENABLED,
        "attempt": facts.attempt,
        "max_attempts": max_attempts,
        "next_retry_at": utc(facts.next_retry_at),
        "updated_at": utc(event.timestamp),
        "version": event.originator_version,
    }
