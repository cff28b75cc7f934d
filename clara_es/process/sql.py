"""The process manager's statements, each defined once in SQLAlchemy Core, compiled once per
dialect at first use and run on the driver's cursor.

A catch-up, a claim or a `done` sends a few short statements per wake; through
`Connection.execute` each one paid SQLAlchemy's compiled-cache lookup, execution context and
result objects, several times the driver's own execute (issue 15). Here a statement keeps
SQLAlchemy's SQL, bind and result type processing (the same text and values SQLAlchemy would
send) and its transaction: it runs on the `sa.Connection`'s own DBAPI connection, inside the
transaction the caller began (or one begun here, as SQLAlchemy's autobegin would), and a
driver error is raised as SQLAlchemy's (`sa.exc.DBAPIError` and its subclasses), the
connection invalidated when the driver says it is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

Params = Mapping[str, Any]


# Expanded texts kept per statement and dialect: one per shape (the IN lists' lengths).
PLANS = 256


@dataclass(frozen=True)
class _Plan:
    """The text for one shape of the IN lists, and where each driver parameter comes from:
    (its name, the IN list it is an item of or None, the item's index in the flattened list,
    its bind processor)."""

    text: str
    slots: list[tuple[str, str | None, int, Callable[[Any], Any] | None]]
    positional: bool


@dataclass
class _Compiled:
    compiled: Any  # sa.sql.compiler.SQLCompiler
    expanding: list[str]  # the IN lists' parameters: their text is expanded per shape
    processors: dict[str, Callable[[Any], Any]]
    results: list[tuple[int, Callable[[Any], Any]]]  # column index, result processor
    plans: dict[tuple[int, ...], _Plan] = field(default_factory=dict)

    def args(self, params: Params) -> tuple[str, Any]:
        """The text and the driver's parameters (positional or named) for `params`."""
        values = self.compiled.construct_params(params)
        if self.expanding:
            plan = self._plan(params)
            lists = {name: _flat(values[name]) for name in self.expanding}
            out = [(name, lists[source][index] if source else values[name], process)
                   for name, source, index, process in plan.slots]
            if plan.positional:
                return plan.text, tuple(v if p is None else p(v) for _n, v, p in out)
            return plan.text, {n: v if p is None else p(v) for n, v, p in out}
        for name, process in self.processors.items():
            values[name] = process(values[name])
        order = self.compiled.positiontup
        if order is not None:
            return self.compiled.string, tuple(values[name] for name in order)
        return self.compiled.string, values

    def _plan(self, params: Params) -> _Plan:
        shape = tuple(len(params[name]) for name in self.expanding)
        plan = self.plans.get(shape)
        if plan is None:
            if len(self.plans) >= PLANS:
                self.plans.clear()
            state = self.compiled.construct_expanded_state(params)
            source = {item: (name, index) for name, items in state.parameter_expansion.items()
                      for index, item in enumerate(items)}
            processors = {**self.processors, **state.processors}
            order = state.positiontup or list(state.parameters)
            slots = [(name, *source.get(name, (None, 0)), processors.get(name))
                     for name in order]
            plan = self.plans[shape] = _Plan(state.statement, slots,
                                             state.positiontup is not None)
        return plan


def _flat(items: Sequence[Any]) -> list[Any]:
    """An IN list's values in the order SQLAlchemy numbers them: tuples item by item."""
    if items and isinstance(items[0], tuple):
        return [value for item in items for value in item]
    return list(items)


class Sql:
    """One statement (or one per dialect: `build(dialect_name)`), run on the driver."""

    def __init__(self, statement: Any = None, *, build: Callable[[str], Any] | None = None
                 ) -> None:
        self.build = build or (lambda _dialect: statement)
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def run(self, conn: sa.Connection, params: Params | None = None) -> None:
        """Execute once, for its effect."""
        self._run(conn, params or {}).close()

    def run_many(self, conn: sa.Connection, rows: Sequence[Params]) -> None:
        """Execute for every row of parameters (the driver's executemany): rows of the same
        keys, a statement without IN lists."""
        if not rows:
            return
        compiled = self._for(conn.dialect, rows[0])
        if compiled.expanding:
            raise ValueError("executemany with IN lists")
        texts_args = [compiled.args(row) for row in rows]
        _execute(conn, texts_args[0][0], [args for _text, args in texts_args], many=True).close()

    def rows(self, conn: sa.Connection, params: Params | None = None) -> Iterator[tuple[Any, ...]]:
        """The result rows, as tuples, through the columns' result processors, read as they
        are asked for (close the iterator to stop early)."""
        params = params or {}
        cursor = self._run(conn, params)
        processors = self._for(conn.dialect, params).results
        try:
            for row in cursor:
                if processors:
                    values = list(row)
                    for index, process in processors:
                        values[index] = process(values[index])
                    row = tuple(values)
                yield row
        finally:
            cursor.close()

    def all(self, conn: sa.Connection, params: Params | None = None) -> list[tuple[Any, ...]]:
        return list(self.rows(conn, params))

    def scalar(self, conn: sa.Connection, params: Params | None = None) -> Any:
        rows = self.all(conn, params)
        return rows[0][0] if rows else None

    def _run(self, conn: sa.Connection, params: Params) -> Any:
        text, args = self._for(conn.dialect, params).args(params)
        return _execute(conn, text, args, many=False)

    def _for(self, dialect: sa.Dialect, params: Params) -> _Compiled:
        # An INSERT's text depends on the columns given, as in SQLAlchemy's own cache key.
        key = (dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(self.build(dialect.name), dialect, params)
        return compiled


def _compile(statement: Any, dialect: sa.Dialect, params: Params) -> _Compiled:
    columns = list(params) if isinstance(statement, sa.Insert) else None
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    processors = {}
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    results = []
    if isinstance(statement, sa.Select):
        for index, column in enumerate(statement.selected_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                results.append((index, process))
    if compiled.literal_execute_params:
        raise ValueError("values rendered into the text: not one text per shape")
    expanding = sorted(compiled.bind_names[bind] for bind in compiled.post_compile_params)
    return _Compiled(compiled, expanding, processors, results)


def run_text(conn: sa.Connection, text: str) -> None:
    """Plain SQL on the driver, in whatever transaction state the connection is in (the
    engine's `begin` event)."""
    _driver(conn, text, (), many=False).close()


def _execute(conn: sa.Connection, text: str, args: Any, *, many: bool) -> Any:
    if not conn.in_transaction():
        conn.begin()  # what SQLAlchemy's autobegin does; the caller's `with` ends it
    return _driver(conn, text, args, many=many)


def _driver(conn: sa.Connection, text: str, args: Any, *, many: bool) -> Any:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        if many:
            cursor.executemany(text, args)
        else:
            cursor.execute(text, args)
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi, cursor)
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            text, args, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost,
            dialect=conn.dialect) from exc
    return cursor
