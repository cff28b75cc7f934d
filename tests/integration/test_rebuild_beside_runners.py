"""`clara-es projections rebuild` beside processes that keep the views live: refused with one
line and nothing dropped (PostgreSQL: they hold the views' advisory lock; SQLite: `serve` or
`run` holds the file), and while a rebuild runs no live runner follows the views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from clara_es.adapters.filelock import hold
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import commands
from projections.catch_up import rebuild
from projections.db import upgrade
from projections.runner import ViewLocks, group_name
from projections.supervisor import Supervisor
from projections.views import select
from tests.support.cli_runner import clara_es
from tests.support.view_streams import positions
from tests.support.waiting import wait_until


@contextmanager
def views_kept_live(store: Store) -> Iterator[None]:
    """Another process keeping the views live, as the store sees it."""
    if store.sqlite_path is not None:  # `serve` or `run` holds the file
        handle = hold(store.sqlite_path)
        try:
            yield
        finally:
            handle.close()
        return
    with Supervisor(store, poll_interval=0.05) as supervisor:  # holds the views' lock
        wait_until(lambda: all(supervisor.locks.holds(n) for n in supervisor.runners),
                   what="the supervisor to hold the views")
        yield


def test_a_rebuild_beside_live_views_is_refused_and_drops_nothing(
    store: Store, app: VoiceSessions
) -> None:
    app.handle(commands.StartSession(room="room", participant="alice"))
    env = {"CLARA_ES_DATABASE_URL": store.url}
    upgrade(store)
    rebuild(store)
    head = app.recorder.max_notification_id()
    with views_kept_live(store):
        for names in ((), ("ui_state",)):
            refused = clara_es("projections", "rebuild", *names, env=env)
            assert refused.returncode == 2, refused.stdout
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert "stop" in refused.stderr
            assert set(positions(store).values()) == {head}  # nothing was dropped
    again = clara_es("projections", "rebuild", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["positions"].values()) == {head}


@pytest.mark.postgres
def test_no_live_runner_takes_the_views_while_a_rebuild_runs(postgres_store: Store) -> None:
    app = VoiceSessions(postgres_store.eventsourcing_env())
    for n in range(3):
        app.handle(commands.StartSession(room=f"room-{n}", participant="alice"))
    app.close()
    upgrade(postgres_store)
    live = group_name(select())  # the lock every live runner takes
    other = ViewLocks(postgres_store)  # another process's
    taken_meanwhile: list[bool] = []
    try:
        rebuild(postgres_store,
                progress=lambda *_: taken_meanwhile.append(other.acquire(live)))
        assert taken_meanwhile and not any(taken_meanwhile)
        assert other.acquire(live)  # free again once the rebuild is done
    finally:
        other.close()
