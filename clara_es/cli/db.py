"""`clara-es db upgrade`: create or migrate the view tables (Alembic) on the chosen store."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.util import CommandError as AlembicError
from sqlalchemy.exc import SQLAlchemyError

from clara_es.cli.common import CommandError, console, db_option, resolve_store
from projections.db import upgrade as upgrade_views


@click.group()
def db() -> None:
    """The database's own tables (the views), migrated by Alembic."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
@db_option
def upgrade(revision: str, db: Path | None) -> None:
    """Migrate the view tables to REVISION (the same as `alembic upgrade head`)."""
    store = resolve_store(db)
    if store.sqlite_path is not None:
        store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        upgrade_views(store, revision)
    except (AlembicError, SQLAlchemyError) as exc:
        raise CommandError(f"cannot upgrade {store.url}: {exc}") from None
    console.print(f"views at revision {revision} on {store.url}")
