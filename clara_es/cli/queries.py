"""`clara-es sessions`, `clara-es status SESSION_ID`, `clara-es stats`: answers from the views."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import sqlalchemy as sa
from rich.table import Table

from clara_es.adapters.store import Store
from clara_es.cli import common
from clara_es.domain import ConnectionState
from projections import queries
from projections.db import ViewsMissing, engine


def existing_store(db: Path | None) -> Store:
    return common.existing(common.resolve_store(db))


@contextmanager
def views_engine(db: Path | None) -> Iterator[sa.Engine]:
    """An engine on the views of the chosen store; missing views are a one-line error."""
    view_engine = engine(existing_store(db))
    try:
        yield view_engine
    except ViewsMissing as exc:
        raise common.CommandError(str(exc)) from None
    finally:
        view_engine.dispose()


def views_behind(view_engine: sa.Engine, db: Path | None) -> int:
    """Events the slowest view is behind the event log."""
    positions = queries.positions(view_engine)
    with common.open_app(common.root_for(db)) as app:
        head = app.recorder.max_notification_id() or 0
    return max((head - p for p in positions.values()), default=0)


def say_if_behind(behind: int) -> None:
    """On stderr (the output stays what --json promises): an answer from views that lag."""
    if behind > 0:
        click.echo(f"clara-es: note: the views are {behind} events behind the event log, so "
                   "this may be out of date (keep `clara-es run`, `serve` or `projections run` "
                   "going, or run `clara-es projections rebuild`)", err=True)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


@click.command()
@click.option(
    "--state", type=click.Choice([s.value for s in ConnectionState]), help="Only this state."
)
@click.option("--room", help="Only sessions in this room.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@common.db_option
@common.json_option
@common.wide_option
def sessions(
    state: str | None, room: str | None, limit: int, db: Path | None, as_json: bool,
    wide: bool,
) -> None:
    """List sessions with their UI state and attempt counts, most recent first."""
    with views_engine(db) as view_engine:
        rows = queries.sessions(view_engine, state=state, room=room, limit=limit)
        say_if_behind(views_behind(view_engine, db))
    if as_json:
        common.print_json(rows)
        return
    table = Table(title=f"{len(rows)} sessions")
    common.id_column(table)
    for column in ("room", "participant", "state", "status", "outages", "attempts",
                   "reconnects"):
        table.add_column(column)
    common.time_column(table, "updated", wide)
    for r in rows:
        c = r["counts"]
        table.add_row(
            str(r["session_id"]), r["room"], r["participant"], r["connection_state"],
            r["status_text"], str(c["outages"]), str(c["reconnect_attempts"]),
            str(c["reconnects"]), common.when(r["updated_at"], wide),
        )
    common.console.print(common.fit(table))


@click.command()
@click.argument("session_id", type=click.UUID)
@common.db_option
@common.json_option
@common.wide_option
def status(session_id: UUID, db: Path | None, as_json: bool, wide: bool) -> None:
    """What the status light and the Start Session button show for one session."""
    with views_engine(db) as view_engine:
        state = queries.status(view_engine, session_id)
        behind = views_behind(view_engine, db)
    if state is None or behind > 0:
        state = _from_the_stream(session_id, db, state)
    if as_json:
        common.print_json(state.model_dump(mode="json"))
        return
    table = Table(title=f"session {session_id}", show_header=False)
    for key, value in state.model_dump().items():
        table.add_row(key, common.when(value, wide) if key.endswith("_at") else str(value))
    common.console.print(common.fit(table))


def _from_the_stream(session_id: UUID, db: Path | None, shown: Any) -> Any:
    """A session the view does not have yet, or not at its last version (just imported, or
    the views are behind): its state from its own stream, saying so on stderr."""
    from clara_es.domain import SessionNotFound

    with common.open_app(common.root_for(db)) as app:
        try:
            state = app.status(session_id)
        except SessionNotFound:
            raise common.CommandError(f"no session {session_id} in this store") from None
    if shown is not None and shown.version >= state.version:
        return shown
    click.echo(f"clara-es: the views have not caught up with session {session_id}: shown "
               "from its stream (run `clara-es projections run` or `projections rebuild`)",
               err=True)
    return state


@click.command()
@click.option(
    "--grace", type=click.FloatRange(min=0, max=queries.LONGEST_GRACE_S), default=300,
    show_default=True,
    help="Seconds a failed or ended session may wait for its cleanup before it is an orphan.",
)
@common.db_option
@common.json_option
def stats(grace: float, db: Path | None, as_json: bool) -> None:
    """Dashboard stats: states, recovery rate, time to recover, failures, orphans."""
    with views_engine(db) as view_engine:
        result = queries.stats(view_engine, grace=timedelta(seconds=grace))
        say_if_behind(views_behind(view_engine, db))
    if as_json:
        common.print_json(result)
        return
    ttr = result["time_to_recover_ms"]
    rate = result["recovery_rate"]
    summary = Table(title="clara-es stats", show_header=False)
    summary.add_row("sessions", str(result["sessions"]))
    for state, n in sorted(result["sessions_by_state"].items()):
        summary.add_row(f"  {state}", str(n))
    summary.add_row("recovered sessions", str(result["recovered_sessions"]))
    summary.add_row("failed sessions", str(result["failed_sessions"]))
    summary.add_row("recovery rate", "-" if rate is None else f"{rate:.1%}")
    summary.add_row("time to recover p50/p95/max",
                    " / ".join("-" if v is None else f"{v} ms" for v in ttr.values()))
    for item in result["failures_per_hour"]:
        summary.add_row(f"failures {_when(item['hour'])}", str(item["failures"]))
    for item in result["failures_per_room"]:
        summary.add_row(f"failures in {item['room']}", str(item["failures"]))
    orphans = result["orphans"]["sessions"]
    summary.add_row(f"orphans (not cleaned up after {grace:g} s)", str(len(orphans)))
    for o in orphans:
        summary.add_row(f"  {o['session_id']}", f"{o['state']} in {o['room']} since "
                        f"{_when(o['final_at'])}")
    common.console.print(summary)
