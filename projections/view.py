"""What every view is: a name, its tables, and how a batch of stored events changes its rows.

A view computes its rows from each event and its own row (never by reading the session back
from the store): the rows it touched last stay in memory between batches, and the rows it
lacks are read in one query per batch. Rows are written once per batch, in one round of
statements (executemany), inside the transaction that moves the view's tracking position.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import sqlalchemy as sa

from clara_es.domain.events import SessionEvent, SessionStarted
from clara_es.domain.state import ConnectionState, Quality, SessionState
from projections.sql import Sql

Row = dict[str, Any]
T = TypeVar("T")


class Logged(NamedTuple):
    """One event of the log as the views receive it: decoded once, for every view.

    `event` is a SessionEvent, or an UnknownEvent (a stored type this code does not know).
    """

    notification_id: int
    event: Any
    session_id: str  # the event's session, as text: the views' key


class View(ABC):
    name: ClassVar[str]
    tables: ClassVar[tuple[sa.Table, ...]]
    tracking: ClassVar[sa.Table]

    @abstractmethod
    def apply(self, db: Sql, batch: Sequence[Logged]) -> None:
        """Change the view's rows for a batch of events, in log order (inside the tracking
        transaction)."""

    def forget(self) -> None:  # noqa: B027  (a view that keeps no rows has nothing to drop)
        """Drop the rows kept in memory (the transaction that changed them rolled back)."""

    def reset(self, db: Sql) -> None:
        self.forget()
        for table in self.tables:
            db.run(_delete_all(table))


@cache
def _delete_all(table: sa.Table) -> sa.Delete:
    return sa.delete(table)


class Rows(Generic[T]):
    """A view's own row per session, for the sessions it saw last (bounded, oldest out);
    `read` turns a stored row into what the view keeps of it (the row itself by default)."""

    def __init__(
        self, table: sa.Table, *where: sa.ColumnElement[bool], maxsize: int = 20_000,
        read: Callable[[Row], T] | None = None,
    ):
        self.table = table
        self.where = where
        self.maxsize = maxsize
        self.read: Callable[[Row], Any] = read or _same
        self._rows: OrderedDict[str, T] = OrderedDict()

    def load(self, db: Sql, batch: Sequence[Logged]) -> None:
        """Read the rows this batch needs and memory lacks (a session's SessionStarted in the
        batch makes its row, so nothing is read for it)."""
        missing = [s for s in _continued(batch) if s not in self._rows]
        read = self.read
        for row in db.where_in(self.table, "session_id", missing, *self.where):
            self._rows[row["session_id"]] = read(row)

    def get(self, session_id: str) -> T | None:
        return self._rows.get(session_id)

    def put(self, session_id: str, row: T) -> None:
        rows = self._rows
        rows[session_id] = row
        rows.move_to_end(session_id)

    def trim(self) -> None:
        rows = self._rows
        while len(rows) > self.maxsize:
            rows.popitem(last=False)

    def clear(self) -> None:
        self._rows.clear()


def _same(row: Row) -> Row:
    return row


def _continued(batch: Iterable[Logged]) -> set[str]:
    """Sessions whose first event in the batch is not their start."""
    seen: set[str] = set()
    continued = set()
    for _, event, session_id in batch:
        if session_id not in seen:
            seen.add(session_id)
            if not isinstance(event, SessionStarted):
                continued.add(session_id)
    return continued


class Facts(SessionState):
    """The few facts a view keeps of a session, for an event to change (events.py's
    `apply_to`, the one definition of what each fact changes); the rest stay at defaults."""

    room = ""
    participant = ""
    policy: dict[str, Any] = {}  # noqa: RUF012  (replaced, never changed in place)
    state = ConnectionState.IDLE
    quality = Quality.UNKNOWN
    attempt = 0
    attempt_in_flight = False
    next_retry_at = None
    outage_started_at = None


def after(event: SessionEvent, **known: Any) -> Facts:
    """The facts `known` of a session, as `event` leaves them."""
    facts = Facts()
    facts.__dict__.update(known)
    event.apply_to(facts)
    return facts


def utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
