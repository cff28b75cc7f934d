"""The due-work table shared by several workers: leases, take-over, one pass, no history read."""

from __future__ import annotations

from uuid import UUID

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import VirtualClock, commands
from clara_es.process.decisions import CLEANUP, EFFECTS, ROOM_CLEANUP, TIMERS
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.worker import settings, worker_on


def ended(app: VoiceSessions, room: str = "room-1") -> UUID:
    session_id = connected(app, room, "alice")
    app.handle(commands.EndSession(reason="user"), session_id)  # cleanup is due at once
    return session_id


def types(app: VoiceSessions, session_id: UUID) -> list[str]:
    return [e.type for e in session_history(app, session_id)]


def test_a_job_whose_worker_died_is_taken_over_when_its_lease_ends(
    store: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    with worker_on(app) as first, worker_on(app) as second:
        session_id = ended(app)
        first.manager.catch_up()
        (job,) = first.due.claim(clock.now(), TIMERS | EFFECTS, 10)  # ...and dies with it
        assert job.kind == CLEANUP
        assert second.run_pending() == 0  # leased: nobody else may take it
        clock.advance(first.settings.lease_s)
        assert second.run_pending() == 2  # the cleanup timer, then its effect
    assert types(app, session_id)[-3:] == ["SessionEnded", "CleanupRequested", "CleanupSkipped"]


def test_a_timer_fired_twice_leaves_the_effect_it_asked_for_in_place(
    store: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    with worker_on(app) as worker:
        session_id = ended(app)
        worker.manager.catch_up()
        (job,) = worker.due.claim(clock.now(), TIMERS, 10)
        worker.execute(job)  # CleanupRequested, whose request id is the timer's id
        # A second worker whose lease on the same timer had run out fires it too.
        app.handle(commands.RequestCleanup(reason="again", command_id=job.id), session_id)
        worker.manager.catch_up()
        (effect,) = worker.due.claim(clock.now(), TIMERS | EFFECTS, 10)
        assert (effect.kind, effect.id) == (ROOM_CLEANUP, job.id)
        worker.execute(effect)
    assert types(app, session_id)[-4:] == [
        "SessionEnded", "CleanupRequested", "SignalIgnored", "CleanupSkipped"]


def test_everything_due_fires_in_one_pass_and_a_new_worker_reads_no_history(
    store: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    config = settings(attempt_timeout_s=1.0)
    with worker_on(app, config=config) as worker:
        sessions = [ended(app, f"room-{i}") for i in range(30)]
        assert worker.run_pending() == 60  # 30 cleanup timers, then their 30 effects
    with worker_on(app, config=config) as worker:
        assert worker.manager.catch_up() == 0
        assert worker.next_due() is None
    for session_id in sessions:
        assert types(app, session_id)[-1] == "CleanupSkipped"
