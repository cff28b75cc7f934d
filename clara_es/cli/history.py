"""`clara-es history`: one session's stream, or events filtered from the history view."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

import click
from rich.table import Table

from clara_es.application import session_history
from clara_es.cli import common
from clara_es.cli.queries import say_if_behind, views_behind, views_engine
from projections import queries


class Instant(click.ParamType):
    name = "TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-01T14:03:07Z)", param, ctx)


@click.command()
@click.argument("session_id", type=click.UUID, required=False)
@click.option("--room", help="Only events of sessions in this room.")
@click.option("--participant", help="Only events of sessions of this participant.")
@click.option("--since", type=Instant(), help="Events at or after this time (UTC if no zone).")
@click.option("--until", type=Instant(), help="Events before this time (UTC if no zone).")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@common.db_option
@common.json_option
@common.wide_option
def history(
    session_id: UUID | None,
    room: str | None,
    participant: str | None,
    since: datetime | None,
    until: datetime | None,
    types: tuple[str, ...],
    limit: int,
    db: Path | None,
    as_json: bool,
    wide: bool,
) -> None:
    """Print stored events, oldest first.

    With only SESSION_ID: that session's stream, with the status after each event. With any
    filter (or no SESSION_ID): matching events of all sessions, from the history view.
    """
    if session_id is not None and not (room or participant or since or until or types):
        _print_stream(session_id, db, as_json, wide)
        return
    with views_engine(db) as view_engine:
        rows = queries.history(
            view_engine, session_id=session_id, room=room, participant=participant,
            since=since, until=until, types=types, limit=limit,
        )
        say_if_behind(views_behind(view_engine, db))
    if as_json:
        common.print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table(title=f"{len(rows)} events")
    common.time_column(table, "time", wide)
    common.id_column(table)
    for column in ("room", "participant", "v", "event", "actor", "details"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            common.when(r.occurred_at, wide), str(r.session_id), r.room,
            r.participant, str(r.version), r.type, r.actor, common.short(r.details),
        )
    common.console.print(common.fit(table))


def _print_stream(session_id: UUID, db: Path | None, as_json: bool, wide: bool) -> None:
    with common.open_app(common.root_for(db)) as app:
        entries = session_history(app, session_id)
    if as_json:
        common.print_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(title=f"session {session_id}")
    common.time_column(table, "time", wide)
    for column in ("v", "event", "actor", "details"):
        table.add_column(column)
    table.add_column("status")
    for e in entries:
        table.add_row(
            e.when() if not wide else common.when(e.occurred_at, wide), str(e.version), e.type,
            e.actor, common.short(e.details), e.state.status_text,
        )
    common.console.print(common.fit(table))
