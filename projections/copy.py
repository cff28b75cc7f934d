"""PostgreSQL's COPY of view rows, in the binary format when every column's type is known:
the server then takes each value as it is stored (no text to parse per value), and the
client sends the values' binary forms (no text made per value)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from psycopg import sql as pg

# The PostgreSQL type each column type is stored as (binary forms differ by type: an
# INTEGER column takes int4's, a BIGINT column int8's).
_BINARY = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Boolean, "bool"),
    (sa.String, "text"),  # VARCHAR and TEXT have the same binary form
)


@cache
def binary_types(table: sa.Table) -> tuple[str, ...] | None:
    """The PostgreSQL type names of the table's columns, or None if one is not known here
    (that table is copied as text)."""
    names = []
    for column in table.c:
        kind = column.type
        if isinstance(kind, sa.DateTime):
            names.append("timestamptz" if kind.timezone else "timestamp")
            continue
        name = next((n for t, n in _BINARY if isinstance(kind, t)), None)
        if name is None:
            return None
        names.append(name)
    return tuple(names)


def copy_rows(
    cursor: Any, target: pg.Identifier, table: sa.Table, rows: Iterable[Sequence[Any]]
) -> None:
    """COPY `rows` (values in the table's column order) into `target` (the table or a
    staging table like it). `rows` may be a generator: each row is sent as it is made."""
    types = binary_types(table)
    copy_sql = pg.SQL("COPY {} ({}) FROM STDIN{}").format(
        target,
        pg.SQL(", ").join(pg.Identifier(column.name) for column in table.c),
        pg.SQL(" (FORMAT BINARY)" if types is not None else ""),
    )
    with cursor.copy(copy_sql) as copy:
        if types is not None:
            copy.set_types(list(types))
        write_row = copy.write_row
        for row in rows:
            write_row(row)
