"""The process manager's catch-up writes a batch's row changes together: whatever the batch
boundaries, the due-work rows come out as if every fact had been applied on its own."""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import Quality, VirtualClock, commands
from clara_es.process import InMemoryAudioPipeline, Worker
from clara_es.process.due import ProcessManager
from clara_es.process.tables import due_rooms, due_tracking, due_work
from tests.support.apps import AppFactory, closing_apps
from tests.support.scenarios import connected, poor
from tests.support.worker import failed_session, worker_on

BATCHES = (1, 7, 10_000)


def history(app: VoiceSessions, clock: VirtualClock, worker: Worker) -> dict[str, bool]:
    """Every rule of the decision table, rooms shared, timers fired, some work left pending."""
    shared = [connected(app, "room-a", f"user-{n}") for n in range(3)]
    worker.run_until(clock.now())
    # its attempts time out (the watchdog fires)
    app.handle(commands.ReportDisconnected(reason="network"), shared[0])
    worker.run_until(clock.now() + timedelta(seconds=120))
    poor(app, shared[1], "user-1")  # a restart requested, and failed by the agent (twice)
    worker.run_until(clock.now() + timedelta(seconds=1))
    app.handle(commands.ChangeQuality(participant="user-1", quality=Quality.GOOD), shared[1])
    # cleanup at once: the room is still used by others
    app.handle(commands.EndSession(reason="user"), shared[2])
    failed_session(app, clock, "room-b")  # Failed: cleanup after the grace time
    worker.run_until(clock.now() + timedelta(seconds=5))
    pending = connected(app, "room-c", "zoe")  # left mid-outage, and poor
    app.handle(commands.ReportDisconnected(reason="network"), pending)
    poor(app, shared[1], "user-1")
    # Cleanups nobody runs: each asks whether another session still uses the room.
    d1, d2, e1 = connected(app, "room-d", "d1"), connected(app, "room-d", "d2"), \
        connected(app, "room-e", "e1")
    for session_id in (d1, e1, d2):
        request = commands.RequestCleanup(reason="test", command_id=f"cleanup-{session_id}")
        app.handle(request, session_id)
    return {str(d1): False, str(e1): True, str(d2): True}  # delete the room?


def rows(conn: sa.Connection) -> dict[str, list[Any]]:
    work = conn.execute(sa.select(due_work.c.session_id, due_work.c.kind, due_work.c.job_id,
                                  due_work.c.due_at, due_work.c.args)
                        .order_by(due_work.c.session_id, due_work.c.kind)).all()
    rooms = conn.execute(sa.select(due_rooms).order_by(due_rooms.c.session_id)).all()
    return {"work": [tuple(r) for r in work], "rooms": [tuple(r) for r in rooms]}


def test_rows_do_not_depend_on_the_batch_boundaries(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    with worker_on(app, InMemoryAudioPipeline(failures=2)) as worker:
        delete_room = history(app, clock, worker)
        engine = worker.manager.engine
        results = {}
        for batch in BATCHES:
            with engine.begin() as conn:  # forget the rows: follow the log again
                conn.execute(sa.delete(due_work))
                conn.execute(sa.delete(due_rooms))
                conn.execute(sa.update(due_tracking).values(notification_id=0))
            manager = ProcessManager(app, engine, worker.settings)  # a process started anew
            manager.catch_up_batch = batch
            assert manager.catch_up() == app.recorder.max_notification_id()
            with manager.engine.connect() as conn:
                results[batch] = rows(conn)
    one_by_one = results[1]
    kinds = {kind for _sid, kind, *_ in one_by_one["work"]}
    assert {"attempt", "restart", "cleanup"} <= kinds, one_by_one  # pending work survived
    assert len(one_by_one["rooms"]) >= 3
    assert {sid: args["delete_room"] for sid, kind, _job, _due, args in one_by_one["work"]
            if kind == "room_cleanup"} == delete_room
    for batch in BATCHES[1:]:
        assert results[batch] == one_by_one, batch


def fresh_rows(app: VoiceSessions, worker: Worker) -> dict[str, list[Any]]:
    """The rows of a process manager that reads every fact from the log."""
    engine = worker.manager.engine
    with engine.begin() as conn:
        conn.execute(sa.delete(due_work))
        conn.execute(sa.delete(due_rooms))
        conn.execute(sa.update(due_tracking).values(notification_id=0))
    reader = ProcessManager(app, engine, worker.settings)
    reader.catch_up()
    reader.saved.close()
    with engine.connect() as conn:
        return rows(conn)


def test_facts_taken_from_this_process_saves_give_the_rows_the_log_gives(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """The worker's process saves some facts, another process the rest, interleaved: the
    catch-up takes its own where they continue its position and reads the others."""
    here, elsewhere = make_app(), make_app()
    with worker_on(here, agent=False) as worker:
        a, b = connected(here, "room-a", "ann"), connected(elsewhere, "room-b", "bob")
        worker.run_until(clock.now())
        here.handle(commands.ReportDisconnected(reason="network"), a)
        elsewhere.handle(commands.ReportDisconnected(reason="network"), b)
        here.handle(commands.ChangeQuality(participant="ann", quality=Quality.POOR), a)
        worker.manager.catch_up()  # one catch-up: its own facts, then the other's, read
        assert worker.manager.position() == here.recorder.max_notification_id()
        worker.run_until(clock.now() + timedelta(seconds=3))  # timers fired here
        assert worker.manager.position() == here.recorder.max_notification_id()
        with worker.manager.engine.connect() as conn:
            followed = rows(conn)
        kinds = {(sid, kind) for sid, kind, *_ in followed["work"]}
        assert {(str(a), "attempt"), (str(b), "attempt")} <= kinds, followed
        assert followed == fresh_rows(here, worker)


def test_a_sole_writer_process_manager_follows_its_saves_alone(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app(sole_writer=True)
    with worker_on(app, InMemoryAudioPipeline(failures=2)) as worker:
        history(app, clock, worker)
        worker.run_until(clock.now())
        assert worker.manager.position() == app.recorder.max_notification_id()
        with worker.manager.engine.connect() as conn:
            followed = rows(conn)
        assert followed["work"], followed
        assert followed == fresh_rows(app, worker)


def test_a_sole_writer_reads_the_log_once_then_only_its_saves(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app(sole_writer=True)
    a = connected(app, "room-a", "ann")  # stored before the process manager started
    with worker_on(app, agent=False) as worker:
        reads = []
        select = app.recorder.select_notifications

        def counted(*args: Any, **kwargs: Any) -> Any:
            reads.append(args or kwargs)
            return select(*args, **kwargs)

        app.recorder.select_notifications = counted  # type: ignore[method-assign]
        worker.manager.catch_up()
        assert len(reads) == 1  # to the end of the log, once
        app.handle(commands.ReportDisconnected(reason="network"), a)
        worker.manager.catch_up()
        worker.manager.catch_up()
        assert len(reads) == 1  # what it saved since, taken as saved
        assert worker.manager.position() == app.recorder.max_notification_id()


def test_a_sole_writer_reads_the_log_when_it_saved_more_than_it_keeps(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app(sole_writer=True)
    with worker_on(app, agent=False) as worker:
        worker.run_until(clock.now())
        worker.manager.saved.facts = deque(maxlen=2)  # keeps the last two saved facts only
        a, b = connected(app, "room-a", "ann"), connected(app, "room-b", "bob")
        app.handle(commands.ReportDisconnected(reason="network"), a)
        app.handle(commands.ReportDisconnected(reason="network"), b)
        worker.manager.catch_up()
        assert worker.manager.position() == app.recorder.max_notification_id()
        with worker.manager.engine.connect() as conn:
            followed = rows(conn)
        assert {(str(a), "attempt"), (str(b), "attempt")} <= {
            (sid, kind) for sid, kind, *_ in followed["work"]}
        assert followed == fresh_rows(app, worker)


@pytest.mark.postgres
def test_a_sole_writer_takes_its_saves_past_a_failed_appends_id(
    postgres_store: Store, clock: VirtualClock
) -> None:
    """On PostgreSQL an append that failed (a lost race) has taken a notification id: the
    saves after it are still applied by the same catch-up."""
    with closing_apps(postgres_store.eventsourcing_env, clock) as make_app:
        app = make_app(sole_writer=True)
        with worker_on(app, agent=False) as worker:
            session_id = connected(app)
            worker.manager.catch_up()
            app.handle(commands.ChangeQuality(participant="alice", quality=Quality.POOR),
                       session_id)
            recorder = app.recorder
            with recorder.datastore.transaction(commit=True) as curs:  # type: ignore[attr-defined]
                curs.execute(f"SELECT nextval(pg_get_serial_sequence("
                             f"'{recorder.datastore.schema}.{recorder.events_table_name}', "  # type: ignore[attr-defined]
                             f"'notification_id'))")
            app.handle(commands.ReportDisconnected(reason="network"), session_id)
            worker.manager.catch_up()
            assert worker.manager.position() == app.recorder.max_notification_id()
            with worker.manager.engine.connect() as conn:
                assert (str(session_id), "attempt") in {
                    (sid, kind) for sid, kind, *_ in rows(conn)["work"]}
