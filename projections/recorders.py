"""A group of views as one eventsourcing TrackingRecorder, one class per backend.

The views' rows and their tracking records are written in ONE transaction of eventsourcing's
datastore, so an event is applied exactly once: a crash before the commit leaves neither,
a crash after leaves both. The tables are created by the Alembic migrations, never here.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from clara_es.adapters.pipeline import one_trip
from projections.sql import COPY_FROM, Backend, Insert, Row, Sql, Statement
from projections.view import Logged, View


@dataclass(frozen=True)
class TrackingStatements:
    """A view's position in its own tracking table (one row per application)."""

    advance: sa.Update  # compare-and-set: two runners of a view never both apply an event
    first: Statement
    forget: sa.Delete
    select: sa.Select[Any]


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

    select = sa.select(table.c.notification_id).where(app)
    return TrackingStatements(advance, first, sa.delete(table).where(app), select)


class PositionMoved(IntegrityError):
    """Another runner moved this view's position first: re-read it and go on from there."""


Positions = dict[str, int | None]  # each view's tracking position (None: nothing applied)


class ViewRecorder(TrackingRecorder):
    """A group of views fed by one reader: each batch changes every view's rows and moves
    every view's position in one transaction. Each view keeps its own position, so one view
    can be rebuilt while the others stay; a view already past an event skips it."""

    view_classes: ClassVar[tuple[type[View], ...]]
    backend: ClassVar[Backend]
    datastore: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.views = [view_class() for view_class in self.view_classes]
        self.names = [view.name for view in self.views]

    def create_table(self) -> None:
        """Alembic owns the view tables and the tracking table (`clara-es db upgrade`)."""

    def positions(self, application_name: str) -> Positions:
        with self.datastore.transaction(commit=False) as cursor:
            db = self._sql(cursor)
            return {
                view.name: _position(db, view, application_name) for view in self.views
            }

    def max_tracking_id(self, application_name: str) -> int | None:
        """The group's position: the least of its views' (what every view has applied)."""
        positions = self.positions(application_name).values()
        return None if None in positions else min(p or 0 for p in positions)

    def apply_batch(
        self, batch: Sequence[Logged], tracking: Tracking, expected: Positions
    ) -> None:
        """Apply `batch` (log order, up to `tracking`) to each view after its `expected`
        position, and move each view's position to `tracking`, in one transaction."""
        try:
            with self._transaction(len(batch)) as cursor:
                db = self._sql(cursor)
                moves = [(view, self._apply(db, view, batch, tracking, expected.get(view.name)))
                         for view in self.views]
                for view, moved in moves:
                    if moved is not None and moved() is None:
                        raise PositionMoved(
                            f"{view.name}: position is no longer {expected.get(view.name)} "
                            f"(another runner applied up to notification "
                            f"{tracking.notification_id})"
                        )
        except BaseException:
            for view in self.views:
                view.forget()
            raise

    def _transaction(self, events: int) -> contextlib.AbstractContextManager[Any]:
        """The batch's transaction (`events` of them), with a cursor."""
        return self.datastore.transaction(commit=True)

    def _apply(
        self, db: Sql, view: View, batch: Sequence[Logged], tracking: Tracking,
        expected: int | None,
    ) -> Callable[[], Row | None] | None:
        """Change the view's rows and move its position; returns the position's move, to be
        checked before the commit (None: the view was past the batch already)."""
        after = expected or 0
        if after >= tracking.notification_id:
            return None
        statements = tracking_statements(view.tracking)
        moved = db.one_later(
            statements.first if expected is None else statements.advance,
            app=tracking.application_name, new=tracking.notification_id, expected=expected,
        )
        if batch and batch[0].notification_id <= after:
            batch = batch[bisect_right(batch, after, key=_notification_id):]
        view.apply(db, batch)
        return moved

    def _sql(self, cursor: Any) -> Sql:
        schema = self.datastore.schema if self.backend == "postgres" else None
        return Sql(cursor, self.backend, schema)

    def reset(self, application_name: str) -> None:
        """Delete every row of the group's views and their positions, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            db = self._sql(cursor)
            for view in self.views:
                view.reset(db)
                db.run(tracking_statements(view.tracking).forget, app=application_name)


def _position(db: Sql, view: View, application_name: str) -> int | None:
    row = db.one(tracking_statements(view.tracking).select, app=application_name)
    return None if row is None else row["notification_id"]


def _notification_id(logged: Logged) -> int:
    return logged.notification_id


class SQLiteViewRecorder(ViewRecorder, SQLiteTrackingRecorder):
    """eventsourcing's own tracking statements are not used: each view has its own table."""

    backend = "sqlite"

    def construct_create_table_statements(self) -> list[str]:
        return []


class PostgresViewRecorder(ViewRecorder, PostgresTrackingRecorder):
    backend = "postgres"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = self.view_classes[0].tracking.name
        super().__init__(datastore, **kwargs)

    @contextlib.contextmanager
    def _transaction(self, events: int) -> Iterator[Any]:
        """A live batch's statements (a few per view, each under COPY_FROM rows, so none is a
        COPY, which pipeline mode refuses) go in pipeline mode: two round trips (the
        statements with the positions' checks, then the commit) instead of two per view."""
        if events >= COPY_FROM:
            with self.datastore.transaction(commit=True) as cursor:
                yield cursor
            return
        with self.datastore.get_connection() as conn, one_trip(conn) as cursor:
            yield cursor


@cache
def recorder_class(views: tuple[type[View], ...], backend: str) -> type[ViewRecorder]:
    base = SQLiteViewRecorder if backend == "sqlite" else PostgresViewRecorder
    name = "".join(view.__name__ for view in views) + base.__name__
    return type(name, (base,), {"view_classes": views})
