"""Each view as an eventsourcing TrackingRecorder, one class per backend.

A view's rows and its tracking record are written in ONE transaction of eventsourcing's
datastore, so an event is applied exactly once: a crash before the commit leaves neither,
a crash after leaves both. The tables are created by the Alembic migrations, never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from sqlalchemy.dialects import sqlite

from projections.sql import Backend, Insert, Sql, Statement
from projections.view import Change, View


@dataclass(frozen=True)
class TrackingStatements:
    """A view's position in its own tracking table (one row per application)."""

    advance: sa.Update  # compare-and-set: two runners of a view never both apply an event
    first: Statement
    forget: sa.Delete


@cache
def tracking_statements(table: sa.Table) -> TrackingStatements:
    app = table.c.application_name == sa.bindparam("app")
    advance = (
        sa.update(table)
        .where(app, table.c.notification_id == sa.bindparam("expected"))
        .values(notification_id=sa.bindparam("new"))
        .returning(table.c.notification_id)
    )

    def first(insert: Insert) -> sa.Executable:
        row = {"application_name": sa.bindparam("app"), "notification_id": sa.bindparam("new")}
        return insert(table).values(row).on_conflict_do_nothing().returning(table.c.notification_id)

    return TrackingStatements(advance, first, sa.delete(table).where(app))


class PositionMoved(IntegrityError):
    """Another runner moved this view's position first: re-read it and go on from there."""


class ViewRecorder(TrackingRecorder):
    """The shared part: apply a batch of changes and move the position, atomically."""

    view_class: ClassVar[type[View]]
    backend: ClassVar[Backend]
    datastore: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.view = self.view_class()
        self.statements = tracking_statements(self.view.tracking)

    def create_table(self) -> None:
        """Alembic owns the view tables and the tracking table (`clara-es db upgrade`)."""

    def apply_changes(
        self, changes: Sequence[Change], tracking: Tracking, expected: int | None
    ) -> None:
        """Apply `changes` and move the position from `expected` to `tracking`."""
        with self.datastore.transaction(commit=True) as cursor, self._pipelined(cursor):
            db = self._sql(cursor)
            statements = self.statements
            statement = statements.first if expected is None else statements.advance
            moved = db.one(
                statement,
                app=tracking.application_name,
                new=tracking.notification_id,
                expected=expected,
            )
            if moved is None:
                raise PositionMoved(
                    f"{self.view.name}: position is no longer {expected} "
                    f"(another runner applied up to notification {tracking.notification_id})"
                )
            for change in changes:
                self.view.apply(db, change)

    def _sql(self, cursor: Any) -> Sql:
        schema = self.datastore.schema if self.backend == "postgres" else None
        return Sql(cursor, self.backend, schema)

    def _pipelined(self, cursor: Any) -> AbstractContextManager[Any]:
        return nullcontext()

    def reset(self, application_name: str) -> None:
        """Delete every row of the view and its position, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            db = self._sql(cursor)
            self.view.reset(db)
            db.run(self.statements.forget, app=application_name)


class SQLiteViewRecorder(ViewRecorder, SQLiteTrackingRecorder):
    backend = "sqlite"

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        # eventsourcing's own statements name one shared table; each view has its own.
        self.insert_tracking_statement, self.select_max_tracking_id_statement = (
            _sqlite_tracking(self.view.tracking)
        )
    def construct_create_table_statements(self) -> list[str]:
        return []


class PostgresViewRecorder(ViewRecorder, PostgresTrackingRecorder):
    backend = "postgres"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = self.view_class.tracking.name
        super().__init__(datastore, **kwargs)

    def _pipelined(self, cursor: Any) -> AbstractContextManager[Any]:
        """Send a batch's statements without waiting for each reply (psycopg pipeline mode)."""
        return cursor.connection.pipeline()


@cache
def _sqlite_tracking(table: sa.Table) -> tuple[str, str]:
    """eventsourcing's single-row tracking insert and its max-position select, on `table`."""
    new = sa.bindparam("notification_id")
    insert = (
        sqlite.insert(table)
        .values(application_name=sa.bindparam("application_name"), notification_id=new)
        .on_conflict_do_update(
            index_elements=[table.c.application_name],
            set_={"notification_id": new},
            where=table.c.notification_id < new,
        )
        .returning(table.c.notification_id)
    )
    select_max = sa.select(sa.func.max(table.c.notification_id)).where(
        table.c.application_name == sa.bindparam("application_name")
    )
    return (
        str(insert.compile(dialect=sqlite.dialect(paramstyle="named"))),
        str(select_max.compile(dialect=sqlite.dialect(paramstyle="qmark"))),
    )


@cache
def recorder_class(view_class: type[View], backend: str) -> type[ViewRecorder]:
    base = SQLiteViewRecorder if backend == "sqlite" else PostgresViewRecorder
    return type(f"{view_class.__name__}{base.__name__}", (base,), {"view_class": view_class})
