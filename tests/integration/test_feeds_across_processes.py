"""Live feeds on PostgreSQL hear appends made by any serve process (LISTEN/NOTIFY).

Two services on one PostgreSQL schema stand for two `serve` processes: they share nothing but
the database. Their feeds re-read their streams only once an hour here, so an update that
arrives at all was woken by the NOTIFY of the other service's append.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from uuid import UUID

import httpx
import psycopg
import pytest

from clara_es.adapters.notify import LogListener
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock, commands
from clara_es.http import create_app
from tests.support.apps import closing_apps
from tests.support.http_service import command, live_server, open_service, start_session
from tests.support.sse import watching
from tests.support.stores import POSTGRES_URL

pytestmark = pytest.mark.postgres

HOUR = 3600.0
DEADLINE = 20.0  # generous: only a feed never woken (polling hourly) would take that long


@pytest.fixture
def two_services(postgres_store: Store, clock: VirtualClock) -> Iterator[tuple[str, str]]:
    """Two services (A, B) on one schema, each under its own uvicorn; their base URLs."""
    a = open_service(postgres_store, clock, feed_poll=HOUR, follow_views=False)
    b = open_service(postgres_store, clock, feed_poll=HOUR, follow_views=False)
    with live_server(create_app(a), a) as url_a, live_server(create_app(b), b) as url_b:
        assert a.listener is not None and a.listener.listening.wait(15)
        yield url_a, url_b


def test_a_feed_on_one_process_receives_what_another_process_appended(
    two_services: tuple[str, str],
) -> None:
    url_a, url_b = two_services
    with httpx.Client(base_url=url_a, timeout=30) as a, \
            httpx.Client(base_url=url_b, timeout=30) as b:
        session_id = start_session(b)
        with watching(a, session_id) as next_event:
            assert next_event(DEADLINE)["id"] == "1"
            assert command(b, session_id, "connect").status_code == 200
            assert command(b, session_id, "connected").status_code == 200
            updates = [next_event(DEADLINE), next_event(DEADLINE)]
    assert [u["id"] for u in updates] == ["2", "3"]
    assert updates[-1]["data"]["status_text"] == "Connected"


def test_the_listener_listens_again_after_its_connection_is_killed(
    postgres_store: Store, clock: VirtualClock
) -> None:
    woken: queue.Queue[set[UUID] | str] = queue.Queue()
    with closing_apps(postgres_store.eventsourcing_env, clock) as make_app:
        app = make_app()
        listener = LogListener(postgres_store, app.recorder,
                               lambda heard: woken.put({n.originator_id for n in heard}),
                               lambda: woken.put("all"), retry_s=0.05).start()
        try:
            assert listener.listening.wait(15)
            assert woken.get(timeout=15) == "all"  # once listening: every feed looks
            first = _start(app)
            assert woken.get(timeout=15) == {first}

            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))
            assert woken.get(timeout=15) == "all"  # back, and nothing missed meanwhile
            second = _start(app)
            assert woken.get(timeout=15) == {second}
        finally:
            listener.stop()


def _start(app: VoiceSessions) -> UUID:
    return app.handle(commands.StartSession(room="room-x", participant="zoe")).session_id
