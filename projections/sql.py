"""Writing view rows with SQLAlchemy Core inside eventsourcing's own transaction.

Views build their statements with Core on their `Table`s. An upsert is a dialect construct
(`insert().on_conflict_do_update`), so a view writes it as a function of the dialect's
`insert`, built once per dialect. Every statement is compiled once per dialect and schema
(placeholders, never literal values) and run on the DB-API cursor eventsourcing's tracking
recorder hands out, so the rows and the view's position commit together. Values go through
the column types' own bind processors: they are stored the way SQLAlchemy reads them back.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, Protocol
from uuid import UUID

import sqlalchemy as sa
from psycopg import sql as pg
from pydantic_core import to_jsonable_python
from sqlalchemy.dialects import postgresql, sqlite

from projections.copy import copy_rows

Backend = Literal["sqlite", "postgres"]
# Fewer rows than this go by executemany on PostgreSQL too: a COPY costs more round trips
# than it saves for the one or two rows of a live event.
COPY_FROM = 50


class Insert(Protocol):
    """`sqlalchemy.dialects.sqlite.insert` or `sqlalchemy.dialects.postgresql.insert`."""

    def __call__(self, table: sa.Table) -> Any: ...


# A Core statement, or a function of the dialect's `insert` for ON CONFLICT statements.
Statement = sa.Executable | Callable[[Insert], sa.Executable]
Processor = Callable[[Any], Any]
Row = dict[str, Any]
# How an upsert resolves a conflict: from the dialect's INSERT of the table to the statement
# with its ON CONFLICT clause (None: `replace_row`).
Conflict = Callable[[Any], sa.Executable] | None

_DIALECTS: dict[str, tuple[sa.Dialect, Insert]] = {
    "sqlite": (sqlite.dialect(paramstyle="named"), sqlite.insert),
    "postgres": (postgresql.psycopg.dialect(), postgresql.insert),
}
_COMPILED: dict[tuple[Hashable, str, str | None], Compiled] = {}


@dataclass(frozen=True)
class Compiled:
    """One statement's SQL for one driver, and how to turn values into its parameters."""

    sql: str
    defaults: dict[str, Any]  # values the statement itself binds (e.g. `+ 1`)
    processors: dict[str, Processor]

    def parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        params = dict(self.defaults)
        for name, value in values.items():
            value = plain(value)
            processor = self.processors.get(name)
            params[name] = value if processor is None else processor(value)
        return params

    def plain_parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """`parameters` for values that are already plain (see `plain`): a view's batch."""
        values = {**self.defaults, **values}
        for name, processor in self.processors.items():
            if name in values:
                values[name] = processor(values[name])
        return values


def bound(*columns: str) -> dict[str, sa.BindParameter[Any]]:
    """Values for insert() or update(): each column set from the parameter of its name."""
    return {column: sa.bindparam(column) for column in columns}


def compiled(statement: Statement, backend: Backend, schema: str | None = None) -> Compiled:
    """The statement compiled for the backend's driver, with tables in `schema` (PostgreSQL)."""
    key = (statement, backend, schema)
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = _compile(statement, backend, schema)
    return found


def _compile(statement: Statement, backend: Backend, schema: str | None) -> Compiled:
    dialect, insert = _DIALECTS[backend]
    stmt = statement if isinstance(statement, sa.Executable) else statement(insert)
    translate = {None: schema} if schema else None
    result = stmt.compile(
        dialect=dialect, schema_translate_map=translate, render_schema_translate=bool(translate)
    )
    defaults: dict[str, Any] = {}
    processors: dict[str, Processor] = {}
    for bind, name in result.bind_names.items():
        if backend == "sqlite" and isinstance(bind.type, sa.DateTime):
            processor: Processor | None = _sqlite_datetime
        else:
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
        if not bind.required:
            value = plain(bind.effective_value)
            defaults[name] = value if processor is None else processor(value)
    return Compiled(result.string, defaults, processors)


def _sqlite_datetime(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite storage format for a time (`YYYY-MM-DD HH:MM:SS.ffffff`, the zone
    dropped), written by one C call instead of a %-format of seven fields."""
    if value is None:
        return None
    return value.isoformat(" ", "microseconds")[:26]  # [26:] is the zone


_JSON = json.JSONEncoder(sort_keys=True, default=to_jsonable_python)
# The same encoding by the C encoder built once (JSONEncoder.encode builds one per call,
# which cost more than the encoding of a view's small dicts); no circular check (the values
# are decoded events' fields).
_C_JSON = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, to_jsonable_python, json.encoder.encode_basestring_ascii, None,
        _JSON.key_separator, _JSON.item_separator, True, False, True,
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def json_text(value: dict[str, Any] | list[Any]) -> str:
    """A dict or list as the JSON text views store (sorted keys)."""
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    if _C_JSON is None:
        return _JSON.encode(value)
    return "".join(_C_JSON(value, 0))


def plain(value: Any) -> Any:
    """What the column types expect: UTC times, session ids as text, JSON as sorted text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json_text(value)
    return value


class Sql:
    """A cursor inside the view's transaction that runs Core statements."""

    def __init__(self, cursor: Any, backend: Backend, schema: str | None = None) -> None:
        self._cursor = cursor
        self._backend = backend
        self._schema = schema

    def run(self, statement: Statement, **values: Any) -> None:
        sql = compiled(statement, self._backend, self._schema)
        self._cursor.execute(sql.sql, sql.parameters(values))

    def one(self, statement: Statement, **values: Any) -> dict[str, Any] | None:
        self.run(statement, **values)
        row = self._cursor.fetchone()
        return None if row is None else dict(row)

    def one_later(self, statement: Statement, **values: Any) -> Callable[[], Row | None]:
        """`one`, its row fetched when the answer is called: on PostgreSQL the statement gets a
        cursor of its own, so in pipeline mode it goes with the statements after it instead
        of a round trip alone."""
        if self._backend != "postgres":
            row = self.one(statement, **values)
            return lambda: row
        sql = compiled(statement, self._backend, self._schema)
        cursor = self._cursor.connection.cursor()
        cursor.execute(sql.sql, sql.parameters(values))

        def fetch() -> Row | None:
            found = cursor.fetchone()
            return None if found is None else dict(found)

        return fetch

    def many(self, statement: Statement, rows: list[dict[str, Any]]) -> None:
        """Run the statement once per row, sent as one batch (on PostgreSQL, psycopg sends
        them in pipeline mode and waits once); values already `plain`."""
        if not rows:
            return
        sql = compiled(statement, self._backend, self._schema)
        self._cursor.executemany(sql.sql, [sql.plain_parameters(row) for row in rows])

    def insert(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """New rows of `table` (values already `plain`): on PostgreSQL one COPY stream, no
        statement per row; on SQLite an executemany of the table's INSERT."""
        if not rows:
            return
        if self._backend != "postgres" or len(rows) < COPY_FROM:
            self.many(_insert(table), rows)
            return
        self._copy(self._identifier(table), table, rows)

    def insert_tuples(
        self, table: sa.Table, rows: Iterable[tuple[Any, ...]], count: int
    ) -> None:
        """`insert` for rows given as tuples in the table's column order (values already
        `plain`), `count` of them at most: a rebuild's history writes tens of thousands, and a
        dict per row (then a parameter dict per row on SQLite) cost more than SQLite's own
        insert of it. `rows` may be a generator: on PostgreSQL the COPY streams each row as it
        is made, so the server stores and indexes the first rows while the next are made."""
        if count <= 0:
            return
        if self._backend == "postgres":
            if count >= COPY_FROM:
                self._copy_tuples(self._identifier(table), table, rows)
            else:
                columns = [column.name for column in table.c]
                self.insert(table, [dict(zip(columns, row, strict=True)) for row in rows])
            return
        sql, processors = _positional_insert(table)
        if processors:
            rows = (_processed(row, processors) for row in rows)
        self._cursor.executemany(sql, rows)

    def upsert(
        self, table: sa.Table, rows: list[dict[str, Any]], conflict: Conflict = None
    ) -> None:
        """Rows of `table` inserted, or merged into the row of the same key by `conflict`
        (by default the new row replaces the old). On PostgreSQL: COPY into a temporary
        table, then one INSERT ... SELECT ... ON CONFLICT; on SQLite an executemany."""
        if not rows:
            return
        conflict = conflict or replace_row
        if self._backend != "postgres" or len(rows) < COPY_FROM:
            self.many(_values_upsert(table, conflict), rows)
            return
        staging = f"{table.name}_batch"
        target = self._identifier(table)
        self._cursor.execute(
            pg.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                pg.Identifier(staging), target
            )
        )
        self._copy(pg.Identifier("pg_temp", staging), table, rows)
        self.run(_staged_upsert(table, conflict))

    def _identifier(self, table: sa.Table) -> pg.Identifier:
        name = (self._schema, table.name) if self._schema else (table.name,)
        return pg.Identifier(*name)

    def _copy(self, target: pg.Identifier, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        columns = [column.name for column in table.c]
        copy_rows(self._cursor, target, table, ([row[c] for c in columns] for row in rows))

    def _copy_tuples(
        self, target: pg.Identifier, table: sa.Table, rows: Iterable[tuple[Any, ...]]
    ) -> None:
        copy_rows(self._cursor, target, table, rows)

    def where_in(
        self, table: sa.Table, column: str, keys: Collection[Any], *where: sa.ColumnElement[bool]
    ) -> list[dict[str, Any]]:
        """The table's rows whose `column` is one of `keys` (and `where`), as Python values
        (times in UTC)."""
        if not keys:
            return []
        if len(keys) == 1:  # following live: one session at a time, one statement kept
            (key,) = keys
            self.run(_where_one(table, column, where), key=key)
        else:
            dialect = _DIALECTS[self._backend][0]
            stmt = sa.select(table).where(table.c[column].in_([plain(k) for k in keys]), *where)
            translate = {None: self._schema} if self._schema else None
            result = stmt.compile(
                dialect=dialect, schema_translate_map=translate,
                render_schema_translate=bool(translate),
                compile_kwargs={"render_postcompile": True},
            )
            self._cursor.execute(result.string, result.construct_params())
        readers = _readers(table, self._backend)
        rows = []
        for row in self._cursor.fetchall():
            values = dict(row)
            for name, reader in readers.items():
                values[name] = reader(values[name])
            rows.append(values)
        return rows


@cache
def _where_one(
    table: sa.Table, column: str, where: tuple[sa.ColumnElement[bool], ...]
) -> sa.Select[Any]:
    return sa.select(table).where(table.c[column] == sa.bindparam("key"), *where)


@cache
def _insert(table: sa.Table) -> sa.Insert:
    return sa.insert(table)


@cache
def _positional_insert(table: sa.Table) -> tuple[str, tuple[tuple[int, Processor], ...]]:
    """The table's INSERT of every column for SQLite with `?` placeholders in column order,
    and the bind processors of the columns that have one (by position)."""
    dialect = sqlite.dialect(paramstyle="qmark")
    columns = list(table.c)
    sql = sa.insert(table).values(bound(*(c.name for c in columns))).compile(dialect=dialect)
    processors = []
    for index, column in enumerate(columns):
        if isinstance(column.type, sa.DateTime):
            processor: Processor | None = _sqlite_datetime
        else:
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((index, processor))
    return sql.string, tuple(processors)


def _processed(row: tuple[Any, ...], processors: tuple[tuple[int, Processor], ...]) -> list[Any]:
    values = list(row)
    for index, processor in processors:
        values[index] = processor(values[index])
    return values


def replace_row(stmt: Any) -> sa.Executable:
    """The conflict most views want: the new row replaces the one with its key."""
    t = stmt.table
    return stmt.on_conflict_do_update(
        index_elements=list(t.primary_key),
        set_={c.name: stmt.excluded[c.name] for c in t.c if not c.primary_key},
    )


@cache
def _values_upsert(table: sa.Table, conflict: Callable[[Any], sa.Executable]) -> Statement:
    def build(insert: Insert) -> sa.Executable:
        return conflict(insert(table).values(bound(*(c.name for c in table.c))))

    return build


@cache
def _staged_upsert(table: sa.Table, conflict: Callable[[Any], sa.Executable]) -> Statement:
    staging = sa.table(
        f"{table.name}_batch", *(sa.column(c.name) for c in table.c), schema="pg_temp"
    )

    def build(insert: Insert) -> sa.Executable:
        columns = [c.name for c in table.c]
        return conflict(insert(table).from_select(columns, sa.select(*staging.c)))

    return build


_READERS: dict[tuple[sa.Table, str], dict[str, Processor]] = {}


def _readers(table: sa.Table, backend: Backend) -> dict[str, Processor]:
    """How to read each column's stored value back: the types' result processors, then UTC."""
    key = (table, backend)
    found = _READERS.get(key)
    if found is None:
        dialect = _DIALECTS[backend][0]
        found = {}
        for column in table.c:
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if isinstance(column.type, sa.DateTime):
                found[column.name] = _utc_reader(processor)
            elif processor is not None:
                found[column.name] = processor
        _READERS[key] = found
    return found


def _utc_reader(processor: Processor | None) -> Processor:
    def read(value: Any) -> Any:
        if processor is not None:
            value = processor(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value

    return read
