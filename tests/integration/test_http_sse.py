"""The live feed over a real uvicorn: every version in order, resumable with Last-Event-ID."""

from __future__ import annotations

from uuid import UUID

import httpx

from clara_es.domain import VirtualClock, commands
from clara_es.http import Service
from clara_es.http.auth import Role
from tests.support.apps import AppFactory
from tests.support.http_service import (
    CLIENT,
    READER,
    command,
    start_session,
    token,
)
from tests.support.sse import feed, take
from tests.support.waiting import wait_until


def test_a_client_that_reconnects_with_last_event_id_misses_nothing(
    client: httpx.Client, clock: VirtualClock
) -> None:
    session_id = start_session(client)
    with feed(client, session_id) as live:
        first = next(live)
        assert (first["id"], first["event"], first["data"]["status_text"]) == (
            "1", "state", "Not connected")
        command(client, session_id, "connect")
        command(client, session_id, "connected")
        received = take(live, 2)
    assert [e["id"] for e in received] == ["2", "3"]
    assert received[-1]["data"]["status_text"] == "Connected"
    k = int(received[-1]["id"])

    # While the client is away: the drop and the first attempt (versions 4 to 6).
    command(client, session_id, "disconnected", {"reason": "network"})
    clock.advance(1)
    command(client, session_id, "attempt-started", {"attempt": 1})

    with feed(client, session_id, {**CLIENT, "Last-Event-ID": str(k)}) as live:
        missed = take(live, 3)
        assert [int(e["id"]) for e in missed] == [k + 1, k + 2, k + 3]
        assert [e["data"]["version"] for e in missed] == [k + 1, k + 2, k + 3]
        assert missed[-1]["data"]["status_text"] == "Reconnecting... (attempt 1 of 5)"
        command(client, session_id, "reconnected")
        (live_event,) = take(live, 1)
    assert live_event["id"] == str(k + 4)
    assert live_event["data"]["status_text"] == "Connected"


def test_the_feed_sees_appends_of_other_processes(
    client: httpx.Client, make_app: AppFactory
) -> None:
    session_id = start_session(client)
    other = make_app()  # another writer on the same store, not this HTTP process
    with feed(client, session_id, headers={}, params={"access_token": token_for_reader()}) as live:
        assert next(live)["id"] == "1"
        other.handle(commands.Connect(), UUID(session_id))
        update = next(live)
    assert (update["id"], update["data"]["connection_state"]) == ("2", "connecting")


def test_a_feed_whose_client_went_away_stops_following_its_session(
    client: httpx.Client, service: Service
) -> None:
    session_id = start_session(client)
    with feed(client, session_id) as live:
        assert next(live)["id"] == "1"
        assert service.changes.listeners == 1
    wait_until(lambda: service.changes.listeners == 0, what="the feed to end")
    assert command(client, session_id, "connect").status_code == 200  # nobody to hand it to


def token_for_reader() -> str:
    return READER["Authorization"].removeprefix("Bearer ")


def test_a_bad_last_event_id_or_token_is_refused_before_the_stream(
    client: httpx.Client, service: Service
) -> None:
    session_id = start_session(client)
    url = f"/api/sessions/{session_id}/live"
    past = client.get(url, headers={**CLIENT, "Last-Event-ID": "9"})
    assert past.status_code == 422
    assert "last-event-id" in past.json()["detail"]
    assert client.get(url, headers={**CLIENT, "Last-Event-ID": "x"}).status_code == 422
    assert client.get(url).status_code == 401
    assert client.get(url, params={"access_token": "nonsense"}).status_code == 401
    mallory = token(Role.CLIENT, "mallory")
    assert client.get(url, params={"access_token": mallory}).status_code == 403
    assert service.changes.listeners == 0
