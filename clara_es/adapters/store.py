"""One setting picks the event store: `sqlite:///path` or `postgresql://user@host:port/db`.

The rest of the code receives an eventsourcing environment and does not care which it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class StoreURLError(ValueError):
    """The database URL cannot be used."""


@dataclass(frozen=True)
class Store:
    url: str
    backend: str  # "sqlite" or "postgres"
    sqlite_path: Path | None = None

    @classmethod
    def from_url(cls, url: str) -> Store:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
            raw = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
            if not raw:
                raise StoreURLError(f"no file in SQLite URL {url!r}: use sqlite:///path/to/file.db")
            return cls(url=url, backend="sqlite", sqlite_path=Path(raw))
        if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            if not parts.path.strip("/"):
                raise StoreURLError(f"no database name in PostgreSQL URL {url!r}")
            return cls(url=url, backend="postgres")
        raise StoreURLError(
            f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db"
        )

    @classmethod
    def sqlite(cls, path: Path | str) -> Store:
        return cls.from_url(f"sqlite:///{path}")

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
        parts = urlsplit(self.url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"]
        return env

    def sqlalchemy_url(self) -> str:
        """The same database as SQLAlchemy (Alembic) names it."""
        if self.sqlite_path is not None:
            return f"sqlite:///{self.sqlite_path}"
        parts = urlsplit(self.url)
        return parts._replace(scheme="postgresql+psycopg", query="").geturl()
