"""One setting picks the event store: `sqlite:///path` or `postgresql://user@host:port/db`.

URLs are read by SQLAlchemy's `make_url`, so they mean what they mean to SQLAlchemy and
Alembic: `sqlite:///relative.db`, `sqlite:////absolute.db`, percent-encoded user names,
passwords and paths, and `?schema=name` for the PostgreSQL schema of the store.
The rest of the code receives an eventsourcing environment and does not care which it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})


class StoreURLError(ValueError):
    """The database URL cannot be used."""


# Alembic's command module is not safe for two threads at once: one migration per process.
_SCHEMA_CHANGES = threading.RLock()


@dataclass(frozen=True)
class Store:
    url: str
    backend: str  # "sqlite" or "postgres"
    sqlite_path: Path | None = None
    # PostgreSQL connections per pool (every application, view and the due-work engine has
    # one): kept open, and opened beyond that under load. See the README's budget.
    pool_size: int = 2
    pool_max_overflow: int = 4

    @classmethod
    def from_url(cls, url: str) -> Store:
        parsed = _parse(url)
        if parsed.drivername == "sqlite":
            if not parsed.database:
                raise StoreURLError(f"no file in SQLite URL {url!r}: use sqlite:///path/to/file.db")
            return cls(url=url, backend="sqlite", sqlite_path=Path(parsed.database))
        if parsed.drivername in POSTGRES_DRIVERS:
            if not (parsed.database or "").strip("/"):
                raise StoreURLError(f"no database name in PostgreSQL URL {_shown(parsed)!r}")
            return cls(url=url, backend="postgres")
        raise StoreURLError(
            f"unsupported database URL {_shown(parsed)!r}: "
            "use sqlite:///path or postgresql://user@host/db"
        )

    @classmethod
    def sqlite(cls, path: Path | str) -> Store:
        return cls.from_url(URL.create("sqlite", database=str(path)).render_as_string())

    @classmethod
    def from_eventsourcing_env(cls, env: Mapping[str, str]) -> Store:
        """The store an application's environment names (the inverse of eventsourcing_env)."""
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.sqlite":
            return cls.sqlite(env["SQLITE_DBNAME"])
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            schema = env.get("POSTGRES_SCHEMA")
            url = URL.create(
                "postgresql", username=env.get("POSTGRES_USER") or None,
                password=env.get("POSTGRES_PASSWORD") or None, host=env.get("POSTGRES_HOST"),
                port=int(env.get("POSTGRES_PORT") or 5432), database=env["POSTGRES_DBNAME"],
                query={"schema": schema} if schema else {},
            )
            return replace(
                cls.from_url(url.render_as_string(hide_password=False)),
                pool_size=int(env.get("POSTGRES_POOL_SIZE") or cls.pool_size),
                pool_max_overflow=int(env.get("POSTGRES_MAX_OVERFLOW") or cls.pool_max_overflow),
            )
        raise StoreURLError(f"no database store in {env.get('PERSISTENCE_MODULE')!r}")

    @property
    def exists(self) -> bool:
        """False only for a SQLite file that is not there (a server is assumed to exist)."""
        return self.sqlite_path is None or self.sqlite_path.exists()

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment eventsourcing's persistence modules read."""
        if self.sqlite_path is not None:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        parsed = make_url(self.url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parsed.database or "",
            "POSTGRES_HOST": parsed.host or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": parsed.username or "postgres",
            "POSTGRES_PASSWORD": parsed.password or "",
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.pool_max_overflow),
        }
        schema = parsed.query.get("schema")
        if schema:
            env["POSTGRES_SCHEMA"] = schema if isinstance(schema, str) else schema[-1]
        return env

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Hold while creating or migrating tables: one process at a time on a PostgreSQL
        database and schema (an advisory lock), one thread at a time in this process.
        Concurrent CREATE TABLE IF NOT EXISTS / CREATE OR REPLACE on PostgreSQL fail with
        "tuple concurrently updated"; behind the lock the second finds the tables made."""
        with _SCHEMA_CHANGES:
            if self.backend != "postgres":
                yield
                return
            key = f"clara-es schema {self.eventsourcing_env().get('POSTGRES_SCHEMA') or 'public'}"
            with self.connect_postgres() as conn:
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
                try:
                    yield
                finally:
                    conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def connect_postgres(self) -> Any:
        """A plain psycopg connection (autocommit) to the store's PostgreSQL database."""
        import psycopg

        env = self.eventsourcing_env()
        return psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=5, autocommit=True,
        )

    def sqlalchemy_url(self) -> str:
        """The same database as SQLAlchemy (Alembic) names it."""
        if self.sqlite_path is not None:
            return URL.create("sqlite", database=str(self.sqlite_path)).render_as_string()
        parsed = make_url(self.url).set(drivername="postgresql+psycopg", query={})
        return parsed.render_as_string(hide_password=False)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreURLError(
            f"cannot read database URL {url!r} ({exc}): "
            "use sqlite:///path or postgresql://user@host/db"
        ) from None


def _shown(url: URL) -> str:
    """The URL for a message: its password masked."""
    return url.render_as_string(hide_password=True)
