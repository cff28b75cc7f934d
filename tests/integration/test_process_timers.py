"""The process manager's durable timers for what no reporter decides alone: poor quality that
lasted its window, a restart no agent answered, a session nobody reports on any more."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from uuid import UUID

import pytest

from clara_es.application import VoiceSessions, session_history
from clara_es.config import Settings
from clara_es.domain import VirtualClock
from clara_es.domain.commands import ChangeQuality, ClaimPipelineRestart, EndSession
from clara_es.process import Worker
from clara_es.process.decisions import IDLE, TIMERS
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.worker import settings, worker_on

IDLE_10_MIN = settings(idle_timeout_s=600.0)
NO_AGENT = settings(poor_window_s=1.0, pipeline_restart_timeout_s=5.0, pipeline_restart_cap=2)


@contextmanager
def connected_under_worker(
    make_app: AppFactory, config: Settings, quality: str | None = None
) -> Iterator[tuple[VoiceSessions, Worker, UUID]]:
    """A connected session (its quality turned `quality`) under a worker with no agent."""
    app = make_app()
    with worker_on(app, config=config, agent=False) as worker:
        sid = connected(app)
        if quality is not None:
            app.handle(ChangeQuality(participant="alice", quality=quality), sid)
        yield app, worker, sid


def test_raw_poor_quality_that_lasts_the_window_restarts_and_no_agent_answers(
    make_app: AppFactory, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Quality reported poor twice, 1.5 s apart, with a 1 s window and no agent anywhere."""
    caplog.set_level(logging.INFO, logger="clara_es.process")
    t0 = clock.now()
    with connected_under_worker(make_app, NO_AGENT, "poor") as (app, worker, sid):
        worker.run_until(t0 + timedelta(seconds=1.5))
        app.handle(ChangeQuality(participant="alice", quality="poor"), sid)
        worker.run_until(t0 + timedelta(seconds=60))
    history = session_history(app, sid)
    at = {e.type: (e.occurred_at - t0).total_seconds() for e in reversed(history)}
    confirmed = next(e for e in history if e.type == "QualityPoor")
    assert (confirmed.actor, confirmed.cause["name"]) == ("system", "quality_poor_confirmed")
    assert at["QualityPoor"] == 1.0
    assert at["PipelineRestartRequested"] == 1.0
    assert "PipelineRestarted" not in at
    failures = [e for e in history if e.type == "PipelineRestartFailed"]
    assert [f.details["error"] for f in failures] == ["no agent answered"] * 2
    assert (failures[0].occurred_at - t0).total_seconds() == 6.0  # the request + 5 s
    assert [e.type for e in history][-2:] == ["CleanupRequested", "CleanupSkipped"]
    assert "2 pipeline restarts did not bring the participant back" in \
        history[-2].details["reason"]
    logged = [r.getMessage() for r in caplog.records]
    for line in (f"event=quality_poor_detected session={sid}",
                 f"event=pipeline_restart_requested session={sid} restart=1",
                 f"event=pipeline_restart session={sid} restart=1 outcome=failed",
                 f"event=cleanup_requested session={sid}",
                 f"event=cleanup session={sid}"):
        assert any(m.startswith(line) for m in logged), line


def test_quality_that_recovers_within_the_window_confirms_nothing(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    with connected_under_worker(make_app, NO_AGENT, "lost") as (app, worker, sid):
        worker.run_until(clock.now() + timedelta(seconds=0.9))
        app.handle(ChangeQuality(participant="alice", quality="good"), sid)
        worker.run_until(clock.now() + timedelta(seconds=30))
    assert [e.type for e in session_history(app, sid)][-2:] == ["QualityChanged"] * 2


def test_a_claimed_restart_whose_agent_goes_silent_fails_at_the_deadline(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    with connected_under_worker(make_app, NO_AGENT, "poor") as (app, worker, sid):
        worker.run_until(clock.now() + timedelta(seconds=1))
        request = app.session(sid).restart_request
        assert request is not None
        clock.advance(4)
        claimed_at = clock.now()
        app.handle(ClaimPipelineRestart(request_id=request, agent="agent-a"), sid)
        worker.run_until(claimed_at + timedelta(seconds=4.9))
        assert app.session(sid).restart_request == request  # the claim moved the deadline
        worker.run_until(claimed_at + timedelta(seconds=5))
    failed = next(e for e in session_history(app, sid) if e.type == "PipelineRestartFailed")
    assert failed.details["error"] == "no agent answered (agent-a claimed it, then went silent)"
    assert failed.occurred_at == claimed_at + timedelta(seconds=5)


def test_a_session_nobody_reports_on_is_ended_and_cleaned_up(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    with connected_under_worker(make_app, IDLE_10_MIN) as (app, worker, sid):
        worker.run_until(clock.now() + timedelta(seconds=500))
        app.handle(ChangeQuality(participant="alice", quality="good"), sid)  # a sign of life
        last = clock.now()
        worker.run_until(last + timedelta(seconds=599))
        assert app.status(sid).connection_state == "connected"
        worker.run_until(last + timedelta(seconds=700))
    history = session_history(app, sid)
    ended = next(e for e in history if e.type == "SessionEnded")
    assert (ended.actor, ended.occurred_at) == ("system", last + timedelta(seconds=600))
    assert ended.details["reason"] == "idle: nothing reported for 0:10:00"
    assert [e.type for e in history][-2:] == ["CleanupRequested", "CleanupSkipped"]


def test_an_ended_session_has_no_idle_timer_left(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    with connected_under_worker(make_app, IDLE_10_MIN) as (app, worker, sid):
        app.handle(EndSession(reason="user"), sid)
        worker.run_until(clock.now() + timedelta(seconds=1))
        cleaned = [e.type for e in session_history(app, sid)]
        worker.run_until(clock.now() + timedelta(hours=2))
    assert cleaned[-3:] == ["SessionEnded", "CleanupRequested", "CleanupSkipped"]
    assert [e.type for e in session_history(app, sid)] == cleaned


def test_a_restart_outliving_its_episode_fails_and_the_new_spell_gets_its_own(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """Quality recovers while a restart is pending and turns bad again: the old request times
    out, and the new spell's restarts follow the backoff from the first delay."""
    with connected_under_worker(make_app, NO_AGENT, "poor") as (app, worker, sid):
        worker.run_until(clock.now() + timedelta(seconds=1))  # restart 1 requested
        app.handle(ChangeQuality(participant="alice", quality="good"), sid)
        app.handle(ChangeQuality(participant="alice", quality="lost"), sid)
        worker.run_until(clock.now() + timedelta(seconds=60))
    history = session_history(app, sid)
    failed = [e for e in history if e.type == "PipelineRestartFailed"]
    assert failed[0].details["error"] == "no agent answered"
    assert [e.type for e in history][-2:] == ["CleanupRequested", "CleanupSkipped"]


def test_timers_due_together_are_fired_together_each_as_if_alone(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """On wall time a worker fires the timers it claimed together in one save; each session
    ends as it would alone, and a timer fired again (its lease ran out meanwhile) records
    nothing more."""
    app = make_app()
    with worker_on(app, config=IDLE_10_MIN, agent=False) as worker:
        sids = [connected(app, room=f"room-{i}", participant=f"user-{i}") for i in range(3)]
        worker.manager.catch_up()
        clock.advance(timedelta(seconds=601))
        jobs = worker.due.claim(clock.now(), TIMERS, 10)
        assert sorted(j.session_id for j in jobs) == sorted(sids)
        worker.fire(jobs)
        fired = [[e.type for e in session_history(app, sid)] for sid in sids]
        worker.fire(jobs)  # again: each command is a repeat of the one recorded
        assert [[e.type for e in session_history(app, sid)] for sid in sids] == fired
        assert worker.due.claim(clock.now(), {IDLE}, 10) == []
        worker.run_until(clock.now() + timedelta(seconds=1))
    for sid in sids:
        types = [e.type for e in session_history(app, sid)]
        assert types.count("SessionEnded") == 1
        assert types[-2:] == ["CleanupRequested", "CleanupSkipped"]
