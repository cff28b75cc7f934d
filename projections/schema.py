"""The SQLAlchemy metadata of every view table, which the Alembic migrations create.

Each view module declares its own tables on `metadata`; each view also has a tracking
table (`<view>_tracking`, the layout of eventsourcing's single-row tracking table), so the
view rows and the view's position in the notification log commit in one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


def tracking_table(view_name: str) -> sa.Table:
    return sa.Table(
        f"{view_name}_tracking",
        metadata,
        sa.Column("application_name", sa.Text, primary_key=True),
        sa.Column("notification_id", sa.BigInteger, nullable=True),
    )


def timestamp(name: str, *, nullable: bool = False, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def session_id_column(*, primary_key: bool = True) -> sa.Column:
    return sa.Column(
        "session_id", sa.String(36), primary_key=primary_key, nullable=False
    )
