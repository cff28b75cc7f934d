"""PostgreSQL only: the live subscription (LISTEN/NOTIFY) dies or misses a NOTIFY, and the
views still end up complete and exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.postgres import PostgresSubscription

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import Actor, BackoffPolicy, Signal, VirtualClock, VoiceSession
from projections.db import schema_of, upgrade
from projections.supervisor import Supervisor
from projections.views import VIEWS
from tests.support.stores import POSTGRES_URL, listen_backends
from tests.support.view_streams import (
    assert_rebuild_matches,
    build_streams,
    positions,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(postgres_store: Store, clock: VirtualClock) -> Iterator[VoiceSessions]:
    app = VoiceSessions(postgres_store.eventsourcing_env(), clock=clock)
    upgrade(postgres_store)
    yield app
    app.close()


def test_terminated_listen_connections_are_restarted_from_the_tracking_position(
    postgres_store: Store, pg_app: VoiceSessions, clock: VirtualClock, application_name: str
) -> None:
    build_streams(pg_app, clock, 20)
    with Supervisor(postgres_store, watchdog_interval=3600, restart_delay=0.05) as supervisor:
        supervisor.wait_for(pg_app.recorder.max_notification_id())
        listeners = len(supervisor.runners)  # one per group of views
        wait_until(lambda: len(listen_backends(application_name)) == listeners, what="LISTEN")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for pid in listen_backends(application_name):
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        build_streams(pg_app, clock, 20)
        supervisor.wait_for(pg_app.recorder.max_notification_id())
        assert supervisor.restarts >= listeners
    assert_rebuild_matches(postgres_store)


def insert_without_notify(store: Store, app: VoiceSessions, clock: VirtualClock) -> None:
    """Append a session's first event the way a lost NOTIFY looks: stored, never announced."""
    signal = Signal(name="start", actor=Actor.CLIENT, at=clock.now())
    session = VoiceSession.start("room-quiet", "nobody-told", BackoffPolicy(), signal)
    (event,) = session.collect_events()
    stored = app.mapper.to_stored_event(event)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema_of(store)}".voicesessions_events '
            "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        )


def test_a_missed_notify_is_caught_by_the_slow_poll(
    postgres_store: Store, pg_app: VoiceSessions, clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every NOTIFY missed: the runners' subscriptions hear nothing (eventsourcing's channel is
    the table's name, shared by every schema on the server, so a test cannot count on silence;
    deaf subscriptions make the miss certain). The watchdog sees the views behind the log and
    not moving, and nudges them to catch up."""
    monkeypatch.setattr(PostgresSubscription, "_listen", lambda subscription: None)
    build_streams(pg_app, clock, 5)
    with Supervisor(postgres_store, watchdog_interval=0.2) as supervisor:
        supervisor.wait_for(pg_app.recorder.max_notification_id())  # the first catch-up
        insert_without_notify(postgres_store, pg_app, clock)
        head = pg_app.recorder.max_notification_id()
        wait_until(
            lambda: positions(postgres_store) == dict.fromkeys(VIEWS, head), what="the quiet event"
        )
        assert supervisor.nudges >= 1
        assert supervisor.restarts == 0
