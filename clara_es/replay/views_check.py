"""The simulator's check of the views: caught up as the live runner does, equal to a rebuild?"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clara_es.adapters.store import Store
from clara_es.replay.processes import forking
from clara_es.replay.scratch import scratch_store
from projections.catch_up import catch_up, rebuild
from projections.db import engine, upgrade
from projections.runner import BATCH as LIVE_BATCH
from projections.views import VIEWS


def _view_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    view_engine = engine(store)
    try:
        with view_engine.connect() as conn:
            return {
                table.name: [tuple(r) for r in conn.execute(
                    sa.select(table).order_by(*table.primary_key.columns))]
                for view in VIEWS.values() for table in (*view.tables, view.tracking)
            }
    finally:
        view_engine.dispose()


def projections_match_rebuild(store: Store) -> bool:
    """Bring every view up to date in the live runner's batches, and rebuild it from nothing
    in one: same rows? On a SQLite file the rebuild runs on a copy, in a child process, beside
    the catch-up (the two folds are the check's whole cost), and the store keeps the views
    caught up, to look into when they differ; elsewhere the store is rebuilt in place."""
    upgrade(store)
    path, context = store.sqlite_path, forking()
    if path is None or context is None:
        catch_up(store, batch=LIVE_BATCH)
        live = _view_rows(store)
        rebuild(store)
        return _view_rows(store) == live
    with scratch_store("rebuild", expected_bytes=_size(path)) as copy:
        assert copy.sqlite_path is not None
        with closing(sqlite3.connect(path)) as source, closing(
                sqlite3.connect(copy.sqlite_path)) as target:
            source.backup(target)
        # Forked: the child needs nothing from this process but the copy's path.
        child = context.Process(target=rebuild, args=(copy,), daemon=True)
        child.start()
        try:
            catch_up(store, batch=LIVE_BATCH)
            live = _view_rows(store)
        finally:
            child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"the views' rebuild on a copy of the store failed "
                               f"(exit code {child.exitcode})")
        return _view_rows(copy) == live


def _size(path: Path) -> int:
    """The store's bytes, its write-ahead log included."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
