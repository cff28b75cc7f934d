"""PostgreSQL only: in `serve` the views follow the log through the process's one log
listener (no LISTEN connection of their own), and stay complete and exactly once when that
listener loses its connection while commands are appended."""

from __future__ import annotations

import psycopg
import pytest

from clara_es.adapters.store import Store
from clara_es.domain import VirtualClock
from projections.views import VIEWS
from tests.support.http_service import open_service
from tests.support.stores import POSTGRES_URL, listen_backends
from tests.support.view_streams import assert_rebuild_matches, build_streams, positions
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres


def test_serve_keeps_its_views_live_through_its_one_listener_even_when_it_reconnects(
    postgres_store: Store, clock: VirtualClock, application_name: str
) -> None:
    service = open_service(postgres_store, clock).start()
    try:
        assert service.listener is not None
        wait_until(lambda: service.listener is not None and service.listener.listening.is_set(),
                   what="the log listener")
        build_streams(service.app, clock, 10)
        service.settle()
        assert set(listen_backends(application_name)) <= {service.listener.backend_pid}

        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (service.listener.backend_pid,))
        build_streams(service.app, clock, 10)  # appended while nobody listens
        head = service.app.recorder.max_notification_id()
        wait_until(lambda: positions(postgres_store) == dict.fromkeys(VIEWS, head),
                   what="the views after the listener came back")
    finally:
        service.close()
    assert_rebuild_matches(postgres_store)


def test_views_that_fall_behind_what_the_listener_holds_for_them_catch_up_from_the_log(
    postgres_store: Store, clock: VirtualClock
) -> None:
    service = open_service(postgres_store, clock)
    service.heard_views.held = 1  # every burst past the first is dropped for a catch-up
    service.start()
    try:
        build_streams(service.app, clock, 20)
        head = service.app.recorder.max_notification_id()
        wait_until(lambda: positions(postgres_store) == dict.fromkeys(VIEWS, head),
                   what="the views")
    finally:
        service.close()
    assert_rebuild_matches(postgres_store)
