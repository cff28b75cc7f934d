"""What every command shares: choosing the store, opening the application, printing."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

import click
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from clara_es.adapters.store import Store, StoreURLError
from clara_es.application import VoiceSessions
from clara_es.bootstrap import Root, SettingsError, bootstrap, read_settings
from clara_es.cli.errors import OPENED, Where, preflight
from clara_es.config import Settings
from clara_es.domain import BackoffPolicy, Clock

F = TypeVar("F", bound=Callable[..., Any])
PIPED_WIDTH = 10_000
ID_WIDTH = 36  # a session id, never cut: the other columns wrap first

# A terminal's width is its own (or COLUMNS); piped output is as wide as its longest line,
# so nothing is wrapped or cut for the program reading it.
console = Console(
    highlight=False,
    width=None if Console().is_terminal or os.environ.get("COLUMNS") else PIPED_WIDTH,
)


class CommandError(click.ClickException):
    """Bad input: one line on stderr, exit status 2, nothing written."""

    exit_code = 2


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM.

    Installed explicitly because a process started in the background by a non-interactive
    shell inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt.
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("clara_es.cli").info(
            "event=stopping signal=%s", signal.Signals(signum).name
        )
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    return stop


def db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        help="SQLite file to use instead of CLARA_ES_DATABASE_URL.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(f)


def policy_options(f: F) -> F:
    """Backoff policy flags; the command receives `policy` (a validated BackoffPolicy)."""
    defaults = BackoffPolicy()
    flags = [
        ("--base-delay-ms", "base_delay_ms", int, "delay before attempt 1"),
        ("--factor", "factor", float, "growth of the delay per attempt"),
        ("--max-attempts", "max_attempts", int, "attempts before the session fails"),
        ("--cap-ms", "cap_ms", int, "longest delay"),
        ("--jitter", "jitter", float, "fraction of each delay randomised (0 to 1)"),
        ("--seed", "seed", int, "seed of the jitter"),
    ]

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for _, name, _, _ in flags}
        fields = {k: v for k, v in given.items() if v is not None}
        try:
            kwargs["policy"] = BackoffPolicy(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'policy'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise CommandError(f"invalid policy: {problems}") from None
        return f(*args, **kwargs)

    for flag, name, kind, text in reversed(flags):
        default = getattr(defaults, name)
        wrapper = click.option(flag, name, type=kind, default=None, help=f"{text} [{default}]")(
            wrapper
        )
    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    """The settings, for a command that opens no store."""
    try:
        return read_settings()
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


def root_for(db: Path | None, *, undo_new: bool = False) -> Root:
    """The process's parts on the chosen store: --db wins over CLARA_ES_DATABASE_URL.

    The store is recorded for the error boundary (clara_es/cli/errors.py); with `undo_new`,
    a SQLite file this command creates is taken away again if the command fails. A
    PostgreSQL server is tried once here, so an unreachable one is one line at once rather
    than a pool's timeout later.
    """
    try:
        root = bootstrap(db)
    except (SettingsError, StoreURLError) as exc:
        raise CommandError(str(exc)) from None
    store = root.store
    if store.sqlite_path is not None:
        OPENED.sqlite(store.sqlite_path, undo_new=undo_new)
        problem = preflight(store.sqlite_path)
        if problem:
            raise CommandError(problem)
    else:
        OPENED.where = Where(make_url(store.url).render_as_string(hide_password=True),
                             "postgres")
        probe_postgres(store)
    return root


def probe_postgres(store: Store) -> None:
    """One connection to the server, closed at once; raises psycopg's error if it fails."""
    import psycopg

    env = store.eventsourcing_env()
    with psycopg.connect(
        host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
    ):
        pass


def require_folder(store: Store) -> None:
    """A SQLite store goes in a folder that exists: a command never creates folders."""
    path = store.sqlite_path
    if path is not None and not path.parent.is_dir():
        raise CommandError(f"no folder {path.parent} for {path.name}: create it first, or "
                           "choose another --db")


def claim_store(root: Root) -> IO[str] | None:
    """Refuse a second long-running process on one SQLite file (one line, status 2)."""
    from clara_es.adapters.filelock import StoreInUse

    try:
        return root.claim_store()
    except StoreInUse as exc:
        raise CommandError(str(exc)) from None


def resolve_store(db: Path | None) -> Store:
    return root_for(db).store


def existing(store: Store) -> Store:
    """The store, if it exists: a reading command never creates a database."""
    if not store.exists:
        raise CommandError(f"no database at {store.sqlite_path} (run `clara-es demo --db` first)")
    return store


def api_credentials(settings: Settings) -> tuple[str, str]:
    if not settings.livekit_api_key or not settings.livekit_api_secret:
        raise CommandError(
            "set CLARA_ES_LIVEKIT_API_KEY and CLARA_ES_LIVEKIT_API_SECRET: the API's tokens "
            "are signed with them"
        )
    return settings.livekit_api_key, settings.livekit_api_secret


@contextmanager
def open_app(
    root: Root,
    *,
    create: bool = False,
    clock: Clock | None = None,
    policy: BackoffPolicy | None = None,
) -> Iterator[VoiceSessions]:
    """The application on the root's store. Reading commands never create a database; a
    store error reaches the error boundary (clara_es/cli/errors.py)."""
    store = root.store if create else existing(root.store)
    require_folder(store)
    app = root.open_sessions(clock=clock, policy=policy)
    try:
        yield app
    finally:
        app.close()


def wide_option(f: F) -> F:
    return click.option(
        "--wide", is_flag=True,
        help="Full timestamps (microseconds and zone); --json always has them.",
    )(f)


def id_column(table: Table, header: str = "session") -> None:
    table.add_column(header, no_wrap=True, min_width=ID_WIDTH)


def time_column(table: Table, header: str, wide: bool) -> None:
    """A timestamp column: folded onto a second line when space is short, never cut."""
    table.add_column(header, overflow="fold")


def fit(table: Table) -> Table:
    """Every column that may wrap folds what does not fit instead of cutting it with `…`."""
    for column in table.columns:
        if not column.no_wrap:
            column.overflow = "fold"
    return table


def when(value: datetime | None, wide: bool = False) -> str:
    """A time for a table: to the millisecond, or (`wide`) in full."""
    if value is None:
        return "-"
    return value.isoformat() if wide else value.isoformat(sep=" ", timespec="milliseconds")


def print_json(data: Any) -> None:
    click.echo(json.dumps(to_jsonable_python(data), indent=2))


def short(details: dict[str, Any]) -> str:
    """Event details in one readable line."""
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            continue
        text = value.strftime("%H:%M:%S.%f")[:-3] if isinstance(value, datetime) else value
        parts.append(f"{key}={text}")
    return " ".join(parts)
