"""The process manager's decisions: watchdog, restarts, cap, cleanup, timers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest

from clara_es.application import VoiceSessions, session_history
from clara_es.domain import VirtualClock, commands
from clara_es.process import InMemoryAudioPipeline, Worker
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.worker import settings, worker_on

Running = tuple[VoiceSessions, Worker, UUID]


def types(app: VoiceSessions, session_id: UUID) -> list[str]:
    return [e.type for e in session_history(app, session_id)]


@pytest.fixture
def running(make_app: AppFactory) -> Iterator[Running]:
    """A connected session on a real store, the process manager's worker running beside it."""
    app = make_app()
    with worker_on(app) as worker:
        yield app, worker, connected(app)


def test_watchdog_fails_an_attempt_whose_client_died(
    running: Running, clock: VirtualClock
) -> None:
    app, worker, session_id = running
    app.handle(commands.ReportDisconnected(reason="network"), session_id)  # attempt 1 at 1 s
    clock.advance(1)
    app.handle(commands.StartAttempt(attempt=1), session_id)  # ...and the client process dies
    started = clock.now()
    worker.run_until(started + timedelta(seconds=9.9))
    assert app.status(session_id).connection_state == "reconnecting"
    worker.run_until(started + timedelta(seconds=10))
    timed_out = session_history(app, session_id)[-2]
    assert (timed_out.type, timed_out.actor) == ("ReconnectAttemptFailed", "system")
    assert timed_out.details == {"attempt": 1, "error": "timeout"}
    assert timed_out.occurred_at == started + timedelta(seconds=10)
    # Nobody ever comes back: attempts 2..5 are never started, each fails at due + 10 s.
    worker.run_until(clock.now() + timedelta(minutes=5))
    state = app.status(session_id)
    assert state.connection_state == "failed"
    assert types(app, session_id).count("ReconnectAttemptFailed") == 5


def test_a_client_that_reports_in_time_is_never_timed_out(
    running: Running, clock: VirtualClock
) -> None:
    app, worker, session_id = running
    state = app.handle(commands.ReportDisconnected(reason="network"), session_id)
    worker.run_until(state.next_retry_at)
    app.handle(commands.StartAttempt(attempt=1), session_id)
    worker.run_until(clock.now() + timedelta(seconds=9))
    app.handle(commands.ReportReconnected(), session_id)
    worker.run_until(clock.now() + timedelta(minutes=5))
    kinds = types(app, session_id)
    assert kinds[-1] == "Reconnected"
    assert "SignalIgnored" not in kinds


def turn_bad(app: VoiceSessions, session_id: UUID, quality: str) -> None:
    """The agent sees the quality turn bad and confirms it after its window (issue 6)."""
    app.handle(commands.ChangeQuality.build(participant="alice", quality=quality), session_id)
    app.handle(commands.ConfirmPoorQuality.build(participant="alice"), session_id)


def test_poor_quality_restarts_the_pipeline_with_backoff_up_to_the_cap(
    make_app: AppFactory, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clara_es.process")
    app = make_app()
    pipeline = InMemoryAudioPipeline(failures=10)
    with worker_on(app, pipeline=pipeline, config=settings(pipeline_restart_cap=3)) as w:
        session_id = connected(app)
        t0 = clock.now()
        turn_bad(app, session_id, "poor")
        w.run_until(t0 + timedelta(seconds=60))
    history = session_history(app, session_id)
    requests = [e for e in history if e.type == "PipelineRestartRequested"]
    assert [e.details["restart"] for e in requests] == [1, 2, 3]
    assert [(e.occurred_at - t0).total_seconds() for e in requests] == [0, 1, 3]  # 1 s, 2 s
    assert [e.type for e in history].count("PipelineRestartFailed") == 3
    assert [e.type for e in history][-3:] == ["Failed", "CleanupRequested", "CleanupSkipped"]
    assert history[-2].occurred_at - t0 == timedelta(seconds=7)  # after the third's 4 s
    assert "3 pipeline restarts" in history[-2].details["reason"]
    assert session_id in pipeline.stopped
    logged = [r.getMessage() for r in caplog.records]
    assert f"event=quality_poor_detected session={session_id} participant=alice quality=poor" \
        in logged
    restarts = [m for m in logged if m.startswith(f"event=pipeline_restart session={session_id}")]
    assert [m.split(" restart=")[1].split()[0] for m in restarts] == ["1", "2", "3"]
    assert any(m.startswith(f"event=cleanup session={session_id}") for m in logged)


def test_good_quality_ends_the_episode_and_resets_the_count(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    pipeline = InMemoryAudioPipeline(failures=1)
    with worker_on(app, pipeline=pipeline) as worker:
        session_id = connected(app)
        turn_bad(app, session_id, "poor")
        worker.run_until(clock.now() + timedelta(seconds=5))  # failed once, then restarted
        assert app.session(session_id).reconnection_attempts == 2
        app.handle(commands.ChangeQuality.build(participant="alice", quality="good"), session_id)
        assert app.session(session_id).reconnection_attempts == 0
        turn_bad(app, session_id, "lost")
        worker.run_until(clock.now() + timedelta(seconds=5))
    session = app.session(session_id)
    assert session.reconnection_attempts == 1
    assert session.state == "connected"
    assert pipeline.restarts[session_id] == 2
    assert "CleanupRequested" not in types(app, session_id)


def test_a_second_outcome_for_one_request_is_recorded_as_ignored(app: VoiceSessions) -> None:
    session_id = connected(app)
    app.handle(commands.ChangeQuality.build(participant="alice", quality="poor"), session_id)
    app.handle(commands.RequestPipelineRestart.build(cap=3, command_id="r1"), session_id)
    app.handle(commands.FinishPipelineRestart.build(request_id="r1"), session_id)
    app.handle(commands.FinishPipelineRestart.build(request_id="r1"), session_id)
    app.handle(commands.RequestCleanup.build(reason="test", command_id="c1"), session_id)
    cleaned = commands.FinishCleanup(request_id="c1", outcome="cleaned", detail="participant alice")
    app.handle(cleaned, session_id)
    app.handle(cleaned, session_id)
    assert types(app, session_id)[-7:] == [
        "PipelineRestartRequested", "PipelineRestarted", "SignalIgnored",
        "Failed", "CleanupRequested", "SessionCleanedUp", "SignalIgnored",
    ]
    # The session failed for the client too: a late reconnect cannot revive it.
    app.handle(commands.ReportReconnected(), session_id)
    assert app.status(session_id).connection_state == "failed"


def test_a_timer_for_a_superseded_attempt_only_records_signal_ignored(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    # attempt 2 is scheduled
    app.handle(commands.FailAttempt(attempt=1, error="network unreachable"), session_id)
    before = app.status(session_id)
    app.handle(commands.TimeOutAttempt.build(attempt=1, command_id="late-timer"), session_id)
    last = session_history(app, session_id)[-1]
    assert (last.type, last.cause["id"]) == ("SignalIgnored", "late-timer")
    assert "stale failure: attempt 1, current is 2" in last.details["reason"]
    assert app.status(session_id).model_dump(exclude={"updated_at", "version"}) == \
        before.model_dump(exclude={"updated_at", "version"})


def test_an_ended_session_is_cleaned_up_at_once(running: Running) -> None:
    app, worker, session_id = running
    app.handle(commands.EndSession(reason="user"), session_id)
    worker.run_pending()
    kinds = types(app, session_id)
    assert kinds[-3:] == ["SessionEnded", "CleanupRequested", "CleanupSkipped"]
    assert app.status(session_id).connection_state == "ended"
