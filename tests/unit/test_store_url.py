"""Store URLs as SQLAlchemy reads them: which store, which file or server, which schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from clara_es.adapters.store import Store, StoreURLError


def test_sqlite_relative_and_absolute_files() -> None:
    relative = Store.from_url("sqlite:///relative.db")
    assert relative.backend == "sqlite" and relative.sqlite_path == Path("relative.db")
    absolute = Store.from_url("sqlite:////var/lib/clara/abs.db")
    assert absolute.sqlite_path == Path("/var/lib/clara/abs.db")
    assert absolute.eventsourcing_env()["SQLITE_DBNAME"] == "/var/lib/clara/abs.db"


def test_sqlite_path_with_awkward_characters_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "50% of a?b#c.db"
    store = Store.sqlite(path)
    assert store.sqlite_path == path
    assert Store.from_url(store.sqlalchemy_url()).sqlite_path == path


def test_postgres_url_gives_eventsourcing_its_settings() -> None:
    store = Store.from_url("postgresql://clara:p%40ss@db.internal:5433/voice?schema=tenant_1")
    assert store.backend == "postgres" and store.sqlite_path is None
    assert store.eventsourcing_env() == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "voice",
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "5433",
        "POSTGRES_USER": "clara",
        "POSTGRES_PASSWORD": "p@ss",
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_SCHEMA": "tenant_1",
        "POSTGRES_POOL_SIZE": "2",  # bounded pools (CLARA_ES_POOL_SIZE, ..._MAX_OVERFLOW)
        "POSTGRES_MAX_OVERFLOW": "4",
    }
    assert store.sqlalchemy_url() == "postgresql+psycopg://clara:p%40ss@db.internal:5433/voice"


@pytest.mark.parametrize("url", ["postgresql+psycopg://u@h/db", "postgres://h/db"])
def test_postgres_spellings(url: str) -> None:
    env = Store.from_url(url).eventsourcing_env()
    assert env["POSTGRES_DBNAME"] == "db" and env["POSTGRES_PORT"] == "5432"
    assert "POSTGRES_SCHEMA" not in env


def test_postgres_defaults_without_host_user_or_port() -> None:
    env = Store.from_url("postgresql:///voice").eventsourcing_env()
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_USER"]) == (
        "127.0.0.1", "5432", "postgres",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "no file in SQLite URL"),
        ("sqlite:///", "no file in SQLite URL"),
        ("postgresql://host", "no database name in PostgreSQL URL"),
        ("postgresql://host/", "no database name in PostgreSQL URL"),
        ("mysql://root@localhost/x", "unsupported database URL"),
        ("postgresql+psycopg2://h/db", "unsupported database URL"),
        ("not a url", "cannot read database URL"),
        ("postgresql://u@h:port/db", "cannot read database URL"),
    ],
)
def test_unusable_urls_say_why(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message):
        Store.from_url(url)


def test_a_password_is_not_repeated_in_the_error() -> None:
    with pytest.raises(StoreURLError) as error:
        Store.from_url("mysql://root:hunter2@localhost/x")
    assert "hunter2" not in str(error.value)


def test_an_applications_environment_names_its_store_again() -> None:
    store = Store.from_url("postgresql://clara:p%40ss@db.internal:5433/voice?schema=tenant_1")
    again = Store.from_eventsourcing_env(store.eventsourcing_env())
    assert again.eventsourcing_env() == store.eventsourcing_env()
    sqlite = Store.sqlite("data/clara-es.db")
    assert Store.from_eventsourcing_env(sqlite.eventsourcing_env()) == sqlite
