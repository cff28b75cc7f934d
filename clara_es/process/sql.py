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
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

Params = Mapping[str, Any]


@dataclass(frozen=True)
class _Compiled:
    compiled: Any  # sa.sql.compiler.SQLCompiler
    expanding: bool  # IN lists: the text is expanded per call, as SQLAlchemy does
    processors: dict[str, Callable[[Any], Any]]
    results: list[tuple[int, Callable[[Any], Any]]]  # column index, result processor

    def args(self, params: Params) -> tuple[str, Any]:
        """The text and the driver's parameters (positional or named) for `params`."""
        compiled = self.compiled
        if self.expanding:
            state = compiled.construct_expanded_state(params)
            text, values, order = state.statement, state.parameters, state.positiontup
            processors = {**self.processors, **state.processors}
        else:
            text, values = compiled.string, compiled.construct_params(params)
            order, processors = compiled.positiontup, self.processors
        for name, process in processors.items():
            if name in values:
                values[name] = process(values[name])
        if order is not None:
            return text, tuple(values[name] for name in order)
        return text, values


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
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    results = []
    if isinstance(statement, sa.Select):
        for index, column in enumerate(statement.selected_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                results.append((index, process))
    return _Compiled(compiled, bool(compiled.post_compile_params), processors, results)


def _execute(conn: sa.Connection, text: str, args: Any, *, many: bool) -> Any:
    if not conn.in_transaction():
        conn.begin()  # what SQLAlchemy's autobegin does; the caller's `with` ends it
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
