"""`clara-es history SESSION_ID`: one session's stored events."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import click
from rich.table import Table

from clara_es.application import session_history
from clara_es.cli.common import console, db_option, json_option, open_app, print_json, short


@click.command()
@click.argument("session_id", type=click.UUID)
@db_option
@json_option
def history(session_id: UUID, db: Path | None, as_json: bool) -> None:
    """Print one session's stored events, oldest first."""
    with open_app(db) as app:
        entries = session_history(app, session_id)
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(title=f"session {session_id}")
    for column in ("time", "v", "event", "actor", "details"):
        table.add_column(column)
    table.add_column("status", no_wrap=True)
    for e in entries:
        table.add_row(
            e.occurred_at.isoformat(timespec="milliseconds"), str(e.version), e.type, e.actor,
            short(e.details), e.state.status_text,
        )
    console.print(table)
