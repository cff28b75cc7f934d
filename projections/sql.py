"""Writing view rows inside eventsourcing's own transaction, on SQLite or PostgreSQL.

View code writes one statement text for both backends: `{table}` names a table of the
view (qualified with the schema on PostgreSQL) and `:name` marks a parameter. Values are
stored the way SQLAlchemy reads them back (the read side queries with SQLAlchemy Core).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic_core import to_jsonable_python

Backend = Literal["sqlite", "postgres"]

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# SQLAlchemy's storage format for DateTime on SQLite (UTC, naive).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass
class Dialect:
    backend: Backend
    schema: str | None = None
    _prepared: dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> str:
        if self.backend == "postgres" and self.schema:
            return f'"{self.schema}"."{name}"'
        return f'"{name}"'

    def prepare(self, statement: str) -> str:
        """The statement with qualified table names and this driver's parameter style."""
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = re.sub(r"\{(\w+)\}", lambda m: self.table(m.group(1)), statement)
            if self.backend == "postgres":
                prepared = _PARAM.sub(r"%(\1)s", prepared)
            self._prepared[statement] = prepared
        return prepared

    def value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            utc = value.astimezone(UTC)
            return utc.strftime(SQLITE_DATETIME) if self.backend == "sqlite" else utc
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, dict | list):
            return json.dumps(to_jsonable_python(value), sort_keys=True)
        return value


class Sql:
    """A cursor inside the view's transaction, speaking the view's statement dialect."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def run(self, statement: str, **params: Any) -> None:
        values = {k: self._dialect.value(v) for k, v in params.items()}
        self._cursor.execute(self._dialect.prepare(statement), values)

    def one(self, statement: str, **params: Any) -> dict[str, Any] | None:
        self.run(statement, **params)
        row = self._cursor.fetchone()
        return None if row is None else dict(row)
