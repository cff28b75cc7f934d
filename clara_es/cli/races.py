"""`clara-es races`: the sessions whose histories contain the races of DESIGN.md section 3."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from clara_es.cli import common
from clara_es.replay.races import find_races, session_ids


@click.command()
@click.argument("session_id", type=click.UUID, required=False)
@click.option("--since", help="Only races at or after this ISO 8601 time (UTC if no zone).")
@common.db_option
@common.json_option
def races(session_id: UUID | None, since: str | None, db: Path | None, as_json: bool) -> None:
    """Find races in one session's history, or in every stored session's."""
    start = None
    if since is not None:
        point = None if since.isdigit() else _instant(since)
        if point is None:
            raise common.CommandError(
                f"--since {since!r} is not an ISO 8601 time (e.g. 2026-01-01T14:03:07Z)"
            )
        start = point
    with common.open_app(common.root_for(db)) as app:
        ids = [session_id] if session_id is not None else list(session_ids(app))
        with Progress(console=Console(stderr=True), transient=True, disable=as_json) as bar:
            task = bar.add_task("reading histories", total=len(ids))
            found = find_races(app, ids, start, progress=lambda _: bar.advance(task))
    if as_json:
        common.print_json([r.model_dump(mode="json") for r in found])
        return
    sessions = {r.session_id for r in found}
    table = Table(title=f"{len(found)} races in {len(sessions)} sessions")
    common.time_column(table, "time", False)
    common.id_column(table)
    for column in ("v", "race"):
        table.add_column(column, no_wrap=True)
    for column in ("what happened", "how it was resolved"):
        table.add_column(column)
    for r in found:
        table.add_row(
            common.when(r.occurred_at), str(r.session_id), str(r.version),
            str(r.kind), r.explanation, r.resolution,
        )
    common.console.print(common.fit(table))


def _instant(value: str) -> datetime | None:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
