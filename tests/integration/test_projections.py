"""The four views, kept by the runners on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent, Tracking

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import FAILURE_TEXT, ConnectionState, VirtualClock, commands
from clara_es.domain.events import SessionCleanedUp
from projections import queries
from projections.catch_up import catch_up
from projections.db import ViewsMissing, engine, upgrade
from projections.recorders import PositionMoved
from projections.runner import ViewRunner
from projections.supervisor import Supervisor
from projections.views import VIEWS
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.view_streams import assert_rebuild_matches, build_streams, positions


@pytest.fixture
def views(store: Store, app: VoiceSessions) -> Store:
    """The store with the view tables migrated (the app has created the event tables)."""
    upgrade(store)
    return store


def drop_and_recover(app: VoiceSessions, clock: VirtualClock, failures: int) -> UUID:
    start = commands.StartSession(room=f"room-{failures}", participant=f"user-{failures}")
    session_id = app.handle(start).session_id
    app.handle(commands.Connect(), session_id)
    app.handle(commands.MarkConnected(), session_id)
    state = app.handle(commands.ReportDisconnected(reason="network"), session_id)
    for attempt in range(1, failures + 1):
        clock.advance(1)
        app.handle(commands.StartAttempt(attempt=attempt), session_id)
        state = app.handle(commands.FailAttempt(attempt=attempt, error="unreachable"), session_id)
    if state.connection_state == ConnectionState.RECONNECTING:
        clock.advance(1)
        app.handle(commands.StartAttempt(attempt=state.attempt), session_id)
        app.handle(commands.ReportReconnected(), session_id)
    return session_id


def test_views_follow_the_stream_live_and_match_a_rebuild(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    build_streams(app, clock, 40)
    with Supervisor(views, poll_interval=0.02) as supervisor:
        supervisor.wait_for(app.recorder.max_notification_id())
        recovered = drop_and_recover(app, clock, 2)
        failed = drop_and_recover(app, clock, 5)
        app.handle(commands.ChangeQuality.build(participant="user-2", quality="poor"), recovered)
        app.handle(commands.EndSession(), recovered)
        supervisor.wait_for(app.recorder.max_notification_id())
    assert_rebuild_matches(views)
    view_engine = engine(views)
    for session_id in (recovered, failed):
        assert queries.status(view_engine, session_id) == app.status(session_id)
    view_engine.dispose()


def test_ui_state_of_a_failed_session_shows_the_failure_and_enables_start(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    failed = drop_and_recover(app, clock, 5)
    reconnecting = connected(app, "room-r", "bob")
    app.handle(commands.ReportDisconnected(), reconnecting)
    catch_up(views)
    view_engine = engine(views)
    state = queries.status(view_engine, failed)
    assert state is not None
    assert state.connection_state == ConnectionState.FAILED
    assert state.status_text == FAILURE_TEXT
    assert state.start_enabled
    retrying = queries.status(view_engine, reconnecting)
    assert retrying is not None
    assert retrying.status_text == "Reconnecting... (attempt 1 of 5)"
    assert not retrying.start_enabled
    assert retrying.next_retry_at == clock.now() + timedelta(seconds=1)
    assert queries.status(view_engine, uuid4()) is None
    view_engine.dispose()


def test_attempt_counts_per_session(views: Store, app: VoiceSessions, clock: VirtualClock) -> None:
    twice = drop_and_recover(app, clock, 3)
    app.handle(commands.ReportDisconnected(), twice)
    # the same outage, reported again: not a second outage
    app.handle(commands.ReportDisconnected(), twice)
    clock.advance(1)
    app.handle(commands.StartAttempt(attempt=1), twice)
    app.handle(commands.ReportReconnected(), twice)
    failed = drop_and_recover(app, clock, 5)
    catch_up(views)
    view_engine = engine(views)
    counts = {row["session_id"]: row["counts"] for row in queries.sessions(view_engine)}
    view_engine.dispose()
    assert counts[twice] == {
        "outages": 2, "reconnect_attempts": 5, "failed_attempts": 3, "reconnects": 2,
        "failures": 0, "pipeline_restarts": 0,
    }
    assert counts[failed] == {
        "outages": 1, "reconnect_attempts": 5, "failed_attempts": 5, "reconnects": 0,
        "failures": 1, "pipeline_restarts": 0,
    }


def test_sessions_filter_by_state_and_room(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    recovered = drop_and_recover(app, clock, 1)
    failed = drop_and_recover(app, clock, 5)
    catch_up(views)
    view_engine = engine(views)
    assert [s["session_id"] for s in queries.sessions(view_engine, state="failed")] == [failed]
    assert [s["session_id"] for s in queries.sessions(view_engine, room="room-1")] == [recovered]
    assert queries.sessions(view_engine, state="failed", room="room-1") == []
    view_engine.dispose()


def test_history_is_queryable_by_session_room_participant_time_and_type(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    first = drop_and_recover(app, clock, 1)
    middle = clock.now()
    second = drop_and_recover(app, clock, 5)
    catch_up(views)
    view_engine = engine(views)
    everything = queries.history(view_engine)
    assert len(everything) == app.recorder.max_notification_id()
    mine = queries.history(view_engine, session_id=first)
    assert [r.version for r in mine] == list(range(1, len(mine) + 1))
    assert {r.session_id for r in queries.history(view_engine, room="room-5")} == {second}
    assert {r.session_id for r in queries.history(view_engine, participant="user-1")} == {first}
    later = queries.history(view_engine, since=middle)
    assert later and all(r.occurred_at >= middle for r in later)
    earlier = queries.history(view_engine, until=middle)
    assert len(earlier) + len(later) == len(everything)
    failed = queries.history(view_engine, types=["Failed"])
    assert [(r.session_id, r.details) for r in failed] == [
        (second, {"reason": "max reconnect attempts reached", "attempts": 5})
    ]
    assert failed[0].room == "room-5" and failed[0].participant == "user-5"
    assert failed[0].cause["name"] == "attempt_failed"
    view_engine.dispose()


def test_stats_recovery_rate_time_to_recover_failures_and_orphans(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    drop_and_recover(app, clock, 0)  # recovers after 1 s
    drop_and_recover(app, clock, 3)  # recovers after 4 s
    failed = drop_and_recover(app, clock, 5)
    cleaned = drop_and_recover(app, clock, 5)
    session = app.session(cleaned)
    session.trigger_event(
        SessionCleanedUp, request_id="cleanup-1", removed="room", actor="system", cause={},
        timestamp=clock.now(),
    )
    app.save(session)
    catch_up(views)
    view_engine = engine(views)
    result = queries.stats(view_engine, now=clock.now() + timedelta(minutes=10))
    assert result["sessions_by_state"] == {"connected": 2, "failed": 2}
    assert result["recovered_sessions"] == 2
    assert result["failed_sessions"] == 2
    assert result["recovery_rate"] == 0.5
    assert result["time_to_recover_ms"] == {"p50": 1000, "p95": 4000, "max": 4000}
    assert result["failures_per_room"] == [{"room": "room-5", "failures": 2}]
    assert [h["failures"] for h in result["failures_per_hour"]] == [2]
    orphans = [o["session_id"] for o in result["orphans"]["sessions"]]
    assert orphans == [str(failed)]
    within_grace = queries.stats(view_engine, now=clock.now())
    assert within_grace["orphans"]["sessions"] == []
    view_engine.dispose()


def test_an_event_type_the_code_does_not_know_is_recorded_and_otherwise_ignored(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id = drop_and_recover(app, clock, 1)
    before = app.status(session_id)
    state = app.mapper.transcoder.encode(
        {"timestamp": clock.now(), "actor": "agent", "cause": {}, "pipeline": "audio"}
    )
    app.recorder.insert_events([
        StoredEvent(
            originator_id=session_id,
            originator_version=before.version + 1,
            topic="clara_es.domain.session:VoiceSession.FromTheFuture",
            state=state,
        )
    ])
    catch_up(views)
    view_engine = engine(views)
    (row,) = queries.history(view_engine, types=["FromTheFuture"])
    assert (row.session_id, row.room, row.details) == (session_id, "room-1", {"pipeline": "audio"})
    assert queries.status(view_engine, session_id) == before
    assert positions(views) == dict.fromkeys(VIEWS, app.recorder.max_notification_id())
    view_engine.dispose()


def test_two_runners_of_one_view_never_apply_an_event_twice(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    drop_and_recover(app, clock, 2)
    with (
        closing(ViewRunner(views, VIEWS["attempt_counts"])) as first,
        closing(ViewRunner(views, VIEWS["attempt_counts"])) as second,
    ):
        notifications = list(app.recorder.select_notifications(start=1, limit=5))
        first.projection.process_batch(notifications, None)
        with pytest.raises(PositionMoved):
            second.projection.process_batch(notifications, None)
        with pytest.raises(PositionMoved):
            second.projection.process_batch(notifications[3:], 3)
        second.catch_up()
        assert first.position() == app.recorder.max_notification_id()
    assert_rebuild_matches(views, ("attempt_counts",))


def test_queries_on_a_database_without_the_views_say_how_to_create_them(
    store: Store, app: VoiceSessions
) -> None:
    view_engine = engine(store)
    with pytest.raises(ViewsMissing, match="clara-es db upgrade"):
        queries.status(view_engine, uuid4())
    view_engine.dispose()


def test_make_app_sessions_from_several_writers_reach_the_views(
    views: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    writers = [make_app() for _ in range(3)]
    ids = [
        w.handle(commands.StartSession(room=f"room-{i}", participant=f"user-{i}")).session_id
        for i, w in enumerate(writers)
    ]
    for writer, session_id in zip(writers, ids, strict=True):
        writer.handle(commands.Connect(), session_id)
    catch_up(views)
    view_engine = engine(views)
    assert {s["session_id"] for s in queries.sessions(view_engine, state="connecting")} == set(ids)
    view_engine.dispose()


def test_the_projection_takes_events_one_by_one_as_eventsourcing_delivers_them(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    build_streams(app, clock, 12)
    with closing(ViewRunner(views, VIEWS["ui_state"])) as runner:
        for n in app.recorder.select_notifications(start=1, limit=10_000):
            event = app.mapper.to_domain_event(n)
            runner.projection.process_event(event, Tracking(app.name, n.id))
    one_by_one = assert_rebuild_matches(views, ("ui_state",))["ui_state"]
    assert len(one_by_one) == 12
