"""Each view as an eventsourcing TrackingRecorder, one class per backend.

A view's rows and its tracking record are written in ONE transaction of eventsourcing's
datastore, so an event is applied exactly once: a crash before the commit leaves neither,
a crash after leaves both. The tables are created by the Alembic migrations, never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import Any, ClassVar

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections.sql import Dialect, Sql
from projections.view import Change, View

# Compare-and-set of the position: two runners of one view can never both apply an event.
ADVANCE = """
UPDATE {tracking} SET notification_id = :new
WHERE application_name = :app AND notification_id = :expected RETURNING notification_id
"""
FIRST = """
INSERT INTO {tracking} (application_name, notification_id) VALUES (:app, :new)
ON CONFLICT DO NOTHING RETURNING notification_id
"""
FORGET = "DELETE FROM {tracking} WHERE application_name = :app"


class PositionMoved(IntegrityError):
    """Another runner moved this view's position first: re-read it and go on from there."""


class ViewRecorder(TrackingRecorder):
    """The shared part: apply a batch of changes and move the position, atomically."""

    view_class: ClassVar[type[View]]
    dialect: Dialect
    datastore: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.view = self.view_class()
        self._statements = {
            name: sql.replace("{tracking}", "{" + self.view.tracking.name + "}")
            for name, sql in (("advance", ADVANCE), ("first", FIRST), ("forget", FORGET))
        }

    def create_table(self) -> None:
        """Alembic owns the view tables and the tracking table (`clara-es db upgrade`)."""

    def apply_changes(
        self, changes: Sequence[Change], tracking: Tracking, expected: int | None
    ) -> None:
        """Apply `changes` and move the position from `expected` to `tracking`."""
        with self.datastore.transaction(commit=True) as cursor, self._pipelined(cursor):
            db = Sql(cursor, self.dialect)
            statement = self._statements["first" if expected is None else "advance"]
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

    def _pipelined(self, cursor: Any) -> AbstractContextManager[Any]:
        return nullcontext()

    def reset(self, application_name: str) -> None:
        """Delete every row of the view and its position, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            db = Sql(cursor, self.dialect)
            self.view.reset(db)
            db.run(self._statements["forget"], app=application_name)


class SQLiteViewRecorder(ViewRecorder, SQLiteTrackingRecorder):
    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.dialect = Dialect("sqlite")
        table = self.view.tracking.name
        # eventsourcing's own statements name one shared table; each view has its own.
        self.insert_tracking_statement = (
            f'INSERT INTO "{table}" VALUES (:application_name, :notification_id) '
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = :notification_id "
            f'WHERE "{table}".notification_id < :notification_id RETURNING notification_id'
        )
        self.select_max_tracking_id_statement = (
            f'SELECT MAX(notification_id) FROM "{table}" WHERE application_name=?'
        )

    def construct_create_table_statements(self) -> list[str]:
        return []


class PostgresViewRecorder(ViewRecorder, PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = self.view_class.tracking.name
        super().__init__(datastore, **kwargs)
        self.dialect = Dialect("postgres", self.datastore.schema)

    def _pipelined(self, cursor: Any) -> AbstractContextManager[Any]:
        """Send a batch's statements without waiting for each reply (psycopg pipeline mode)."""
        return cursor.connection.pipeline()


@cache
def recorder_class(view_class: type[View], backend: str) -> type[ViewRecorder]:
    base = SQLiteViewRecorder if backend == "sqlite" else PostgresViewRecorder
    return type(f"{view_class.__name__}{base.__name__}", (base,), {"view_class": view_class})
