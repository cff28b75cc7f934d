"""`clara-es projections run|rebuild|status`: keep the views live, rebuild them, show lag."""

from __future__ import annotations

from pathlib import Path

import click
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clara_es.cli import common
from clara_es.cli.queries import existing_store, views_engine
from projections import queries
from projections.catch_up import rebuild as rebuild_views
from projections.recorders import PositionMoved
from projections.supervisor import Supervisor
from projections.view import View
from projections.views import VIEWS, select


@click.group()
def projections() -> None:
    """The materialised views: ui_state, attempt_counts, history, stats."""


def _views(names: tuple[str, ...]) -> list[type[View]]:
    try:
        return select(names)
    except ValueError as exc:
        raise common.CommandError(str(exc)) from None


@projections.command()
@click.option("--poll", type=click.FloatRange(min=0.01), default=0.1, show_default=True,
              help="Seconds between polls of the event log (SQLite; PostgreSQL listens).")
@common.db_option
def run(poll: float, db: Path | None) -> None:
    """Keep every view up to date with the event streams until Ctrl-C or SIGTERM."""
    store = existing_store(db)
    with views_engine(db) as view_engine:
        queries.positions(view_engine)
        stopped = common.stop_on_signals()
        supervisor = Supervisor(store, poll_interval=poll).start()
        try:
            with Live(
                _positions_table(supervisor), console=common.console, refresh_per_second=2
            ) as live:
                while not stopped.wait(1.0):
                    live.update(_positions_table(supervisor))
        finally:
            supervisor.stop()
    common.console.print("projections stopped; each view resumes from its tracking position")


def _positions_table(supervisor: Supervisor) -> Table:
    table = Table(title=f"projections on {supervisor.store.url} (Ctrl-C to stop)")
    for column in ("view", "position", "head", "behind"):
        table.add_column(column)
    for name, runner in supervisor.runners.items():
        try:
            position, head = runner.position(), runner.head()
        except Exception as exc:  # shown, and the supervisor restarts the runner
            table.add_row(name, "-", "-", f"error: {exc}")
            continue
        table.add_row(name, str(position), str(head), str(head - position))
    table.caption = f"restarts: {supervisor.restarts}"
    return table


@projections.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@common.db_option
@common.json_option
def rebuild(names: tuple[str, ...], db: Path | None, as_json: bool) -> None:
    """Drop the named views (all by default) and rebuild them from the event streams.

    Stop `clara-es projections run` first: a runner and a rebuild of the same view would
    race for its position (the loser stops with an error, the view stays consistent).
    """
    views = _views(names)
    store = existing_store(db)
    with views_engine(db) as view_engine:
        queries.positions(view_engine)
        columns = (TextColumn("{task.description:>15}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=common.console, disable=as_json) as progress:
            tasks = {v.name: progress.add_task(v.name, total=None) for v in views}

            def report(name: str, position: int, head: int) -> None:
                progress.update(tasks[name], completed=position, total=max(head, position))

            try:
                result = rebuild_views(store, views, progress=report)
            except PositionMoved as exc:
                raise common.CommandError(
                    f"{exc}: stop `clara-es projections run` and rebuild again"
                ) from None
    if as_json:
        common.print_json({"positions": result})
    else:
        for name, position in result.items():
            common.console.print(f"rebuilt {name} up to notification {position}")


@projections.command(name="status")
@common.db_option
@common.json_option
def status_(db: Path | None, as_json: bool) -> None:
    """Each view's position in the event log, the log's head, and how far behind each is."""
    with views_engine(db) as view_engine:
        result = queries.positions(view_engine)
    if as_json:
        common.print_json(result)
        return
    with common.open_app(common.root_for(db)) as app:
        head = app.recorder.max_notification_id() or 0
    table = Table(title=f"views (the event log's head: {head})")
    for column in ("view", "position", "head", "behind"):
        table.add_column(column)
    for name in VIEWS:
        table.add_row(name, str(result[name]), str(head), str(head - result[name]))
    common.console.print(table)
