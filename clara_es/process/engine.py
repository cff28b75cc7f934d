"""The SQLAlchemy engine of the due-work tables: a bounded pool on PostgreSQL (the store's
schema as search path), one writer at a time on SQLite (BEGIN IMMEDIATE, so a transaction that
reads and then writes never fails halfway on a lock it could not upgrade; a connection with the
`read_only` execution option begins a plain read transaction instead)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clara_es.adapters.store import Store
from clara_es.process.sql import run_text


def due_engine(store: Store) -> sa.Engine:
    if store.backend == "sqlite":
        engine = sa.create_engine(
            store.sqlalchemy_url(), connect_args={"timeout": 30, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _autocommit_driver)
        sa.event.listen(engine, "begin", _begin_immediate)
        return engine
    schema = store.eventsourcing_env().get("POSTGRES_SCHEMA")
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    return sa.create_engine(
        store.sqlalchemy_url(), connect_args=connect_args, pool_size=store.pool_size,
        max_overflow=store.pool_max_overflow, pool_pre_ping=True,
    )


def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event starts transactions


def _begin_immediate(conn: sa.Connection) -> None:
    read_only = conn.get_execution_options().get("read_only", False)
    run_text(conn, "BEGIN" if read_only else "BEGIN IMMEDIATE")
