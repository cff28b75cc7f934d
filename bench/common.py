"""Stores for benchmarks (a fresh SQLite file and, when reachable, a fresh PostgreSQL schema)
and the one way a benchmark prints its rows."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from clara_es.adapters.store import Store

POSTGRES_URL = os.environ.get(
    "CLARA_ES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def fresh_store(backend: str) -> Iterator[Store]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="clara-es-bench-") as scratch:
            yield Store.sqlite(Path(scratch) / "bench.db")
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield Store.from_url(f"{POSTGRES_URL}{sep}schema={schema}")
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def backends() -> list[str]:
    return ["sqlite", "postgres"] if postgres_available() else ["sqlite"]


def arguments(
    doc: str | None, argv: list[str] | None, sessions: int, **numbers: int
) -> argparse.Namespace:
    """--sessions, any other whole-number options (by name and default), and --json."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=sessions)
    for name, default in numbers.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def postgres_arguments(
    doc: str | None, argv: list[str] | None, quick: str, **options: float
) -> argparse.Namespace:
    """For a PostgreSQL-only bench: its options (by name and default, typed as the default),
    --quick (`quick` says what it shrinks to), --json; exits saying so without PostgreSQL."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not postgres_available():
        raise SystemExit(f"PostgreSQL not reachable at {POSTGRES_URL}")
    return args


class Report:
    """Rows of a benchmark: each printed as a line as it comes, or all as JSON at the end."""

    def __init__(self, line: str, as_json: bool) -> None:
        self.line = line
        self.as_json = as_json
        self.rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        self.rows.append(row)
        if not self.as_json:
            print(self.line.format_map(row), flush=True)

    def finish(self) -> None:
        if self.as_json:
            print(json.dumps({"cores": os.cpu_count(), "rows": self.rows}, indent=2))
