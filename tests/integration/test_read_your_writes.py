"""Read-your-writes over HTTP: a GET after a command of the same caller shows at least the
version the command answered, though the views are kept by a runner that lags; reads from
views that are behind say so (`X-Clara-Views-Behind`)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import httpx
import pytest

from clara_es.adapters.store import Store
from clara_es.domain import VirtualClock
from clara_es.http import create_app
from clara_es.http.freshness import Freshness
from projections import db as views_db
from projections.catch_up import catch_up
from tests.support.http_service import (
    CLIENT,
    READER,
    command,
    live_server,
    open_service,
    start_session,
)


@pytest.fixture
def lagging(store: Store, clock: VirtualClock) -> Iterator[httpx.Client]:
    """The views move only when the test catches them up (a runner that lags for ever)."""
    service = open_service(store, clock, follow_views=False, read_wait_s=0.05)
    with live_server(create_app(service), service) as url, httpx.Client(
        base_url=url, timeout=30
    ) as http:
        yield http


def test_the_writer_sees_its_own_version_though_the_view_is_behind(
    lagging: httpx.Client, store: Store
) -> None:
    session_id = start_session(lagging)
    command(lagging, session_id, "connect")
    catch_up(store)  # the view holds version 2
    answered = command(lagging, session_id, "connected").json()["version"]

    mine = lagging.get(f"/api/sessions/{session_id}", headers=CLIENT)
    assert mine.json()["version"] == answered == 3
    assert mine.json()["status_text"] == "Connected"
    assert mine.headers["X-Clara-Source"] == "stream"
    assert mine.headers["X-Clara-Views-Behind"] == "1"

    # Another caller gets the view, told that it is behind, unless it asks for a version.
    theirs = lagging.get(f"/api/sessions/{session_id}", headers=READER)
    assert theirs.json()["version"] == 2
    assert theirs.headers["X-Clara-Source"] == "view"
    assert theirs.headers["X-Clara-Views-Behind"] == "1"
    by_query = lagging.get(f"/api/sessions/{session_id}?min_version=3", headers=READER)
    by_header = lagging.get(f"/api/sessions/{session_id}",
                            headers={**READER, "X-Clara-Min-Version": "3"})
    assert by_query.json()["version"] == by_header.json()["version"] == 3


def test_a_history_behind_the_callers_write_is_503_until_the_view_catches_up(
    lagging: httpx.Client, store: Store
) -> None:
    session_id = start_session(lagging)
    catch_up(store)
    answered = command(lagging, session_id, "connect").json()["version"]

    behind = lagging.get(f"/api/sessions/{session_id}/history", headers=CLIENT)
    assert behind.status_code == 503
    assert behind.headers["content-type"] == "application/problem+json"
    assert behind.headers["Retry-After"] == "1"
    assert f"not reached version {answered}" in behind.json()["detail"]
    assert behind.headers["X-Clara-Views-Behind"] == "1"
    # A reader that asks for nothing in particular gets what the view has, and is told.
    stale = lagging.get(f"/api/sessions/{session_id}/history", headers=READER)
    assert [r["version"] for r in stale.json()] == [1]
    assert stale.headers["X-Clara-Views-Behind"] == "1"

    catch_up(store)
    caught_up = lagging.get(f"/api/sessions/{session_id}/history", headers=CLIENT)
    assert [r["version"] for r in caught_up.json()] == [1, answered]
    assert caught_up.headers["X-Clara-Views-Behind"] == "0"


def test_lists_and_stats_say_the_views_are_behind(lagging: httpx.Client) -> None:
    session_id = start_session(lagging)
    listed = lagging.get("/api/sessions", headers=CLIENT)
    assert listed.status_code == 200
    assert listed.headers["X-Clara-Views-Behind"] == "1"
    assert session_id not in {row["session_id"] for row in listed.json()}
    stats = lagging.get("/api/stats", headers=READER)
    assert stats.status_code == 200
    assert stats.headers["X-Clara-Views-Behind"] == "1"


def test_with_a_slow_runner_a_get_right_after_a_command_waits_for_it(
    store: Store, clock: VirtualClock
) -> None:
    # The runner polls the log every 0.3 s: every GET below comes sooner than that.
    service = open_service(store, clock, view_poll=0.3, read_wait_s=20)
    with live_server(create_app(service), service) as url, httpx.Client(
        base_url=url, timeout=30
    ) as http:
        session_id = start_session(http)
        for name, body in (("connect", None), ("connected", None),
                           ("disconnected", {"reason": "wifi"})):
            answered = command(http, session_id, name, body).json()
            history = http.get(f"/api/sessions/{session_id}/history", headers=CLIENT)
            assert history.json()[-1]["version"] == answered["version"]
            listed = {r["session_id"]: r for r in
                      http.get("/api/sessions", headers=CLIENT).json()}
            assert listed[session_id]["version"] == answered["version"]
            assert listed[session_id]["status_text"] == answered["status_text"]
        assert UUID(session_id) == UUID(answered["session_id"])


def test_a_negative_or_fractional_min_version_is_422(lagging: httpx.Client) -> None:
    session_id = start_session(lagging)
    for query in ("min_version=-1", "min_version=0.5", "min_version=x"):
        answer = lagging.get(f"/api/sessions/{session_id}?{query}", headers=READER)
        assert answer.status_code == 422, query
        assert answer.json()["errors"][0]["field"] == "min_version"


def test_a_busy_process_reuses_the_views_behind_figure_for_a_moment(store: Store) -> None:
    views_db.upgrade(store)
    engine = views_db.engine(store)
    head, now = [5], [0.0]
    fresh = Freshness(engine, lambda: head[0], monotonic=lambda: now[0], behind_ttl_s=0.1)
    try:
        assert fresh.recently_behind() == 5  # nothing applied yet: 5 events behind
        head[0], now[0] = 7, 0.05
        assert fresh.recently_behind() == 5  # measured 50 ms ago: reused
        now[0] = 0.2
        assert fresh.recently_behind() == 7  # older than 0.1 s: measured again
    finally:
        engine.dispose()
