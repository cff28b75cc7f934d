"""The view tables' database through SQLAlchemy: the engine, and Alembic's upgrade/downgrade."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from clara_es.adapters.store import Store

SCRIPT_LOCATION = "clara_es:migrations"


class ViewsMissing(RuntimeError):
    """The view tables do not exist yet on this database."""


def schema_of(store: Store) -> str | None:
    return store.eventsourcing_env().get("POSTGRES_SCHEMA")


def engine(store: Store, **kwargs: Any) -> sa.Engine:
    """An engine on the store's database; on PostgreSQL its schema is the search path."""
    schema = schema_of(store)
    if schema:
        kwargs.setdefault("connect_args", {})["options"] = f"-csearch_path={schema}"
    return sa.create_engine(store.sqlalchemy_url(), **kwargs)


def alembic_config(store: Store | None = None) -> Config:
    """Alembic's configuration; env.py takes the store from here, else CLARA_ES_DATABASE_URL."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if store is not None:
        config.attributes["store"] = store
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Migrate; safe when several processes start at once (they take turns)."""
    with store.schema_lock():
        command.upgrade(alembic_config(store), revision)


def downgrade(store: Store, revision: str = "base") -> None:
    with store.schema_lock():
        command.downgrade(alembic_config(store), revision)
