"""The process manager's catch-up writes a batch's row changes together: whatever the batch
boundaries, the due-work rows come out as if every fact had been applied on its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from clara_es.application import VoiceSessions
from clara_es.domain import Quality, VirtualClock, commands
from clara_es.process import InMemoryAudioPipeline, Worker
from clara_es.process.due import ProcessManager
from clara_es.process.tables import due_rooms, due_tracking, due_work
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
