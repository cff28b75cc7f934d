"""Alembic environment: the view tables of `projections` and the process manager's due-work
tables, on the database of the store.

The store comes from the caller (`clara-es db upgrade`, tests) or CLARA_ES_DATABASE_URL.
Only the tables in the views' metadata are compared: eventsourcing creates its own
event tables, which are not Alembic's business.
"""

from __future__ import annotations

import logging.config

from alembic import context

from clara_es.adapters.store import Store
from clara_es.bootstrap import bootstrap
from clara_es.process.tables import metadata as process_metadata
from projections.db import engine, schema_of
from projections.schema import metadata
from projections.views import VIEWS  # noqa: F401  (declares every view table on metadata)

config = context.config
if config.config_file_name is not None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

store: Store = config.attributes.get("store") or bootstrap().store


TARGETS = [metadata, process_metadata]


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    if type_ == "table":
        return any(name in target.tables for target in TARGETS)
    return True


def run_migrations_offline() -> None:
    context.configure(
        url=store.sqlalchemy_url(),
        target_metadata=TARGETS,
        literal_binds=True,
        version_table_schema=schema_of(store),
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with engine(store).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=TARGETS,
            include_name=include_name,
            render_as_batch=store.backend == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
