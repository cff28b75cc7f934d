"""The process manager's tables: due work, the rooms of sessions not yet cleaned up, and the
position in the sessions' log up to which both are kept (one row per followed application).

Alembic creates them (migration 0002) on both backends; they live beside the events and the
views, in the same database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# One row per pending timer or effect of a session, at most one of each kind.
due_work = sa.Table(
    "due_work",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
)

# Sessions whose room may still be in use: from SessionStarted until cleanup is requested.
due_rooms = sa.Table(
    "due_rooms",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("room", sa.String(200), nullable=False, index=True),
)

due_tracking = sa.Table(
    "due_tracking",
    metadata,
    sa.Column("application_name", sa.Text, primary_key=True),
    sa.Column("notification_id", sa.BigInteger, nullable=False, server_default="0"),
)


def by_key(*columns: sa.Column[Any]) -> sa.ColumnElement[bool]:
    """The due_work rows whose (session_id, *columns) is in the `keys` parameter, bound with
    the `sessions` parameter (`sessions_of(keys)`). The session list is what makes it cheap on
    SQLite: a row-value IN alone is a scan of the whole table; with it, a primary-key search."""
    return sa.and_(
        due_work.c.session_id.in_(sa.bindparam("sessions", expanding=True)),
        sa.tuple_(due_work.c.session_id, *columns).in_(sa.bindparam("keys", expanding=True)),
    )


def sessions_of(keys: list[tuple[str, ...]]) -> list[str]:
    return sorted({key[0] for key in keys})
