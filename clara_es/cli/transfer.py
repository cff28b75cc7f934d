"""`clara-es export SESSION_ID` and `clara-es import FILE`: one session as JSON lines."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import click

from clara_es.cli.common import db_option, json_option, open_app, print_json, root_for
from clara_es.domain import SystemClock
from clara_es.replay.transfer import export_lines, import_export, read_export


@click.command(name="export")
@click.argument("session_id", type=click.UUID)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write [stdout].")
@db_option
def export(session_id: UUID, output: click.utils.LazyFile, db: Path | None) -> None:
    """Write one session's stream, with its metadata, as JSON lines."""
    with open_app(root_for(db)) as app:
        lines = list(export_lines(app, session_id, SystemClock().now()))
    output.write("".join(f"{line}\n" for line in lines))


@click.command(name="import")
@click.argument("file", type=click.File("rb"))
@click.option("--new-id", is_flag=True, help="Import under a new session id (a copy).")
@db_option
@json_option
def import_(file: click.utils.LazyFile, new_id: bool, db: Path | None, as_json: bool) -> None:
    """Load an exported session into the store: all of it, or nothing."""
    checked = read_export(file)
    with open_app(root_for(db), create=True) as app:
        imported = import_export(app, checked, new_id=new_id)
    if as_json:
        print_json(imported.__dict__)
    else:
        click.echo(
            f"imported {imported.events} events as session {imported.session_id}"
            + (f" (copy of {imported.source_session_id})" if new_id else "")
        )
