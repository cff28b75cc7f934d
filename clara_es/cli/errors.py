"""The command line's one error boundary: a store error becomes one line saying what is wrong
and what to do.

Errors reach here wrapped (eventsourcing's PersistenceError around sqlite3's, SQLAlchemy's
DBAPIError around psycopg's, a pool timeout around a refused connection), so each one is
read down its whole chain and named by what the user can do about it. Only the standard
library is imported here: `clara-es --help` stays light.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

# (a phrase in the error, what is wrong, what to do); {where} names the store.
SQLITE_FAULTS = (
    ("file is not a database", "{where} is not a clara-es store (not a SQLite database)",
     "point --db or CLARA_ES_DATABASE_URL at the store's file, or move this file away"),
    ("disk image is malformed", "{where} is damaged (a malformed SQLite database)",
     "restore it from a backup, or import the sessions' exports into a new store"),
    ("database is locked", "{where} is locked by another process",
     "wait for that process to finish, or stop it, and try again"),
    ("readonly database", "{where} is read-only",
     "make the file and its folder writable, or work on a copy"),
    ("disk is full", "the disk holding {where} is full",
     "free some space and try again"),
    ("unable to open database file", "cannot open {where}",
     "check that its folder exists and is writable"),
    ("disk i/o error", "the disk holding {where} failed to read or write",
     "check the disk (is it full or read-only?) and try again"),
)
POSTGRES_REFUSED = ("password authentication failed", 'role "', 'database "',
                    "no pg_hba.conf entry", "permission denied for database",
                    "too many connections")
POSTGRES_UNREACHABLE = ("connection refused", "could not connect", "connection failed",
                        "couldn't get a connection", "timeout expired", "could not translate",
                        "server closed the connection", "connection timeout",
                        "no route to host", "network is unreachable")
# Errors raised by these packages are the store's, whatever their kind.
STORE_MODULES = frozenset({"sqlite3", "psycopg", "psycopg_pool", "sqlalchemy", "alembic"})
OS_FAULTS = {
    errno.ENOSPC: ("the disk holding {where} is full", "free some space and try again"),
    errno.EROFS: ("{where} is on a read-only file system",
                  "use a store on a writable disk (--db or CLARA_ES_DATABASE_URL)"),
    errno.EACCES: ("no permission to write {where}", "make its folder writable"),
    errno.EPERM: ("no permission to write {where}", "make its folder writable"),
    errno.EDQUOT: ("the disk quota for {where} is used up", "free some space and try again"),
}


@dataclass(frozen=True)
class Where:
    """The store a command opened, for messages: a path, or a URL with its password hidden."""

    text: str
    backend: str  # "sqlite" or "postgres"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: `__cause__`, `__context__`, a DBAPIError's `orig`."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def explain(exc: BaseException, where: Where | None) -> str | None:
    """One line for a store error ("what is wrong; what to do"), or None for anything else."""
    place = where.text if where is not None else "the store"
    chain = list(causes(exc))
    for inner in chain:
        newer = _newer_schema(inner)
        if newer:
            return (f"the views' tables of {place} are at revision {newer}, which this clara-es "
                    "does not know (written by a newer version); upgrade clara-es to use it")
        if type(inner).__name__ == "TopicError":
            return (f"{place} holds events this clara-es cannot read ({first_line(inner)}: "
                    "written by a newer version?); upgrade clara-es to use it")
    if not any(_is_store_error(inner) or isinstance(inner, OSError) for inner in chain):
        return None
    if where is not None and where.backend == "sqlite":
        line = preflight(Path(where.text))
        if line:
            return line
    for inner in chain:
        if isinstance(inner, sqlite3.Error):
            text = str(inner).lower()
            for phrase, what, todo in SQLITE_FAULTS:
                if phrase in text:
                    return f"{what.format(where=place)}; {todo}"
    for inner in chain:
        if isinstance(inner, OSError) and inner.errno in OS_FAULTS:
            what, todo = OS_FAULTS[inner.errno]
            return f"{what.format(where=_path_of(inner) or place)}; {todo}"
    if where is None or where.backend == "postgres":
        line = _postgres(chain, place)
        if line:
            return line
    for inner in chain:
        if _is_store_error(inner):
            return (f"the store {place} failed: {first_line(inner)}; check it (or restore it "
                    "from a backup) and try again")
    return None


def _postgres(chain: list[BaseException], place: str) -> str | None:
    for inner in chain:
        module = type(inner).__module__
        if not module.startswith(("psycopg", "eventsourcing", "sqlalchemy")):
            continue
        text = str(inner).lower()
        if any(p in text for p in POSTGRES_REFUSED):
            return (f"PostgreSQL at {place} refused the connection ({first_line(inner)}); "
                    "check the user, password and database in CLARA_ES_DATABASE_URL")
        if any(p in text for p in POSTGRES_UNREACHABLE):
            return (f"cannot reach PostgreSQL at {place} ({first_line(inner)}); start the "
                    "server, or point CLARA_ES_DATABASE_URL at one that runs")
    return None


def preflight(path: Path) -> str | None:
    """What stops SQLite before it opens `path` (it would leave its journal files behind)."""
    if _read_only_folder(path):
        return (f"the folder of {path} is read-only (SQLite writes its journal beside the "
                "file); make the folder writable, or copy the store to a writable one")
    if _disk_full(path):
        return f"the disk holding {path} is full; free some space and try again"
    return None


def _read_only_folder(path: Path) -> bool:
    folder = path.parent
    if not folder.is_dir():
        return False
    read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    return read_only or not os.access(folder, os.W_OK)


def _disk_full(path: Path) -> bool:
    """Less free space than SQLite needs for a page of its WAL index: full, for a store."""
    folder = path.parent
    if not folder.is_dir():
        return False
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def _is_store_error(exc: BaseException) -> bool:
    if type(exc).__module__.split(".")[0] in STORE_MODULES or isinstance(exc, sqlite3.Error):
        return True
    return any(c.__name__ == "PersistenceError" for c in type(exc).__mro__)


def _newer_schema(exc: BaseException) -> str | None:
    """Alembic's "Can't locate revision identified by 'X'": the tables come from a newer
    clara-es."""
    text = str(exc)
    marker = "Can't locate revision identified by "
    if type(exc).__module__.startswith("alembic") and marker in text:
        return text.split(marker, 1)[1].split()[0].strip("'\"")
    return None


def _path_of(exc: OSError) -> str | None:
    return str(Path(exc.filename)) if exc.filename else None


@dataclass
class Opened:
    """What this command opened: its store, and the SQLite files it would create (taken away
    again when the command fails, so a failed command leaves the store as it was)."""

    where: Where | None = None
    new_files: list[Path] = field(default_factory=list)

    def sqlite(self, path: Path, *, undo_new: bool) -> None:
        """Record a SQLite store about to be opened; with `undo_new` (a short command, never
        one that runs for hours), which of its files it would create."""
        self.where = Where(str(path), "sqlite")
        if not undo_new:
            self.new_files = []
            return
        reactions = (path.with_name(f"{path.stem}.reactions{path.suffix}") if path.suffix
                     else Path(f"{path}.reactions"))
        self.new_files = [p for p in (path, reactions) if not p.exists()]

    @property
    def where_text(self) -> str:
        return self.where.text if self.where is not None else "the store"

    def forget(self) -> None:
        self.where, self.new_files = None, []

    def remove_new_files(self) -> None:
        for base in self.new_files:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with suppress(OSError):  # a read-only or vanished folder: nothing to undo
                    Path(f"{base}{suffix}").unlink(missing_ok=True)


OPENED = Opened()
