"""The views in one pass: one reader feeds every view, each from its own rows."""

from __future__ import annotations

from contextlib import closing
from uuid import UUID

import pytest

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock, commands
from projections import queries
from projections.catch_up import catch_up
from projections.db import engine, upgrade
from projections.runner import ViewRunner
from projections.views import VIEWS
from tests.support.view_streams import assert_rebuild_matches, build_streams, positions


@pytest.fixture
def views(store: Store, app: VoiceSessions) -> Store:
    upgrade(store)
    return store


def test_a_view_dropped_alone_is_brought_back_by_the_one_reader_of_every_view(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    build_streams(app, clock, 12)
    catch_up(views)
    with closing(ViewRunner(views, VIEWS["attempt_counts"])) as alone:
        alone.view.reset(app.name)
    build_streams(app, clock, 6)
    catch_up(views)
    head = app.recorder.max_notification_id()
    assert positions(views) == dict.fromkeys(VIEWS, head)
    assert_rebuild_matches(views)


def test_sessions_that_go_on_after_a_restart_continue_from_the_rows_in_the_database(
    views: Store, app: VoiceSessions, clock: VirtualClock
) -> None:
    ids: list[UUID] = [
        app.handle(commands.StartSession(room=f"room-{i}", participant=f"user-{i}")).session_id
        for i in range(3)
    ]
    for session_id in ids:
        app.handle(commands.Connect(), session_id)
        app.handle(commands.MarkConnected(), session_id)
    catch_up(views)  # this runner stops; the next one starts with nothing in memory
    for attempt, session_id in enumerate(ids, start=1):
        app.handle(commands.ReportDisconnected(reason="network"), session_id)
        clock.advance(1)
        for failed in range(1, attempt):
            app.handle(commands.StartAttempt(attempt=failed), session_id)
            app.handle(commands.FailAttempt(attempt=failed, error="unreachable"), session_id)
    catch_up(views)
    view_engine = engine(views)
    try:
        for session_id in ids:
            assert queries.status(view_engine, session_id) == app.status(session_id)
        counts = {s["session_id"]: s["counts"] for s in queries.sessions(view_engine)}
    finally:
        view_engine.dispose()
    assert [counts[i]["failed_attempts"] for i in ids] == [0, 1, 2]
    assert_rebuild_matches(views)
