"""`clara-es db upgrade`: create or migrate the view tables (Alembic) on the chosen store."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicError

from clara_es.adapters.store import Store
from clara_es.cli.common import CommandError, console, db_option, require_folder, root_for
from clara_es.cli.errors import OPENED
from projections.db import alembic_config, engine
from projections.db import upgrade as upgrade_views


@click.group()
def db() -> None:
    """The database's own tables (the views), migrated by Alembic."""


@db.command()
@click.argument("target", metavar="[REVISION]", required=False)
@click.option("--revision", help="Alembic revision (the same as REVISION).  [default: head]")
@db_option
def upgrade(target: str | None, revision: str | None, db: Path | None) -> None:
    """Migrate the view tables forward to REVISION (the same as `alembic upgrade head`)."""
    if target and revision and target != revision:
        raise CommandError(f"two revisions given ({target} and --revision {revision}): give one")
    wanted = target or revision or "head"
    store = root_for(db, undo_new=True).store
    require_folder(store)
    script = ScriptDirectory.from_config(alembic_config(store))
    try:
        goal = script.get_revision(wanted)
    except AlembicError:
        known = ", ".join(["head", "base", *sorted(r.revision for r in script.walk_revisions())])
        raise CommandError(f"unknown revision {wanted!r} (known: {known})") from None
    current = _current(store)
    if current is not None:
        # A revision this clara-es does not know is a newer version's: the boundary says so.
        script.get_revision(current)
        ahead = {r.revision for r in script.iterate_revisions(current, "base")}
        if goal is None or (goal.revision in ahead and goal.revision != current):
            raise CommandError(
                f"{wanted} is behind the views' revision {current} on {OPENED.where_text}: "
                f"`db upgrade` only moves forward (`alembic downgrade {wanted}` goes back)"
            )
    upgrade_views(store, wanted)
    console.print(f"views at revision {_current(store) or 'base'} on {OPENED.where_text}")


def _current(store: Store) -> str | None:
    """The views' revision on the store, without creating anything on a new SQLite file."""
    if store.sqlite_path is not None and not store.sqlite_path.exists():
        return None
    view_engine = engine(store)
    try:
        with view_engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        view_engine.dispose()
