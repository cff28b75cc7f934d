"""Real stores for the integration and end-to-end tests: a SQLite file and a PostgreSQL schema.

PostgreSQL comes from CLARA_ES_TEST_POSTGRES_URL (default: the local server, database `test`).
Each test gets a schema of its own, dropped afterwards. Without a reachable server the
PostgreSQL tests skip, saying how to run them; with CI=true they fail instead of skipping.
The fixtures are imported by the conftest.py of tests/integration and tests/e2e.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import psycopg
import pytest

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock
from tests.support.apps import AppFactory, closing_apps
from tests.support.optional import require

POSTGRES_URL = os.environ.get(
    "CLARA_ES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@cache
def postgres_unreachable_reason() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return (
            f"PostgreSQL not reachable at {POSTGRES_URL} ({str(exc).strip().splitlines()[0]}); "
            "start a server and set CLARA_ES_TEST_POSTGRES_URL=postgresql://user@host:port/db "
            "to run these tests"
        )


def require_postgres() -> None:
    require("the PostgreSQL tests", postgres_unreachable_reason())


@pytest.fixture
def postgres_store() -> Iterator[Store]:
    """A fresh schema in the test database, as a Store."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield Store.from_url(f"{POSTGRES_URL}{sep}schema={schema}")
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Store:
    return Store.sqlite(tmp_path / "clara-es.db")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def make_app(store: Store, clock: VirtualClock) -> Iterator[AppFactory]:
    """Builds VoiceSessions on the test's store (several may share it); closes them after."""
    with closing_apps(store.eventsourcing_env, clock) as factory:
        yield factory


@pytest.fixture
def app(make_app: AppFactory) -> VoiceSessions:
    return make_app()


@pytest.fixture
def application_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """libpq names every connection this process opens from now on, so only ours are found."""
    name = f"clara-es-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)
    return name


def listen_backends(application_name: str) -> list[int]:
    """The connections named `application_name` whose last statement was a LISTEN (a log
    listener's is a select once it has read the log)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND query LIKE 'LISTEN %%'",
            (application_name,),
        ).fetchall()
    return [pid for (pid,) in rows]
