"""The process manager's durable timers on both stores: a restart finds them again."""

from __future__ import annotations

from datetime import timedelta

from clara_es.adapters.store import Store
from clara_es.application import session_history
from clara_es.domain import VirtualClock
from tests.support.apps import AppFactory
from tests.support.worker import drop_while_a_worker_runs, worker_on


def test_timers_survive_a_restart_of_the_process_manager(
    store: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    session_id, _ = drop_while_a_worker_runs(app)  # the deadline (due + 10 s) is recorded
    clock.advance(60)  # long past the deadline while nothing ran
    with worker_on(app) as worker:
        assert worker.next_due() == clock.now() - timedelta(seconds=49)
        worker.run_pending()
    timed_out = [e for e in session_history(app, session_id) if e.type == "ReconnectAttemptFailed"]
    assert [(e.details["attempt"], e.occurred_at) for e in timed_out] == [(1, clock.now())]


def test_due_work_lives_in_the_store_and_a_restart_reads_no_history(
    store: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    _, position = drop_while_a_worker_runs(app)
    assert position == app.recorder.max_notification_id()
    with worker_on(app) as worker:  # starts where the first left off, from the rows
        assert worker.manager.catch_up() == 0
        assert worker.next_due() == clock.now() + timedelta(seconds=11)
    if store.sqlite_path is not None:
        assert not any(p.name.endswith(".reactions.db") for p in store.sqlite_path.parent.iterdir())
