"""The live feed over a real uvicorn: every version in order, resumable with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx

from clara_es.domain import VirtualClock, commands
from clara_es.http import Service
from clara_es.http.auth import Role
from tests.support.apps import AppFactory
from tests.support.http_service import CLIENT, READER, command, start_session, token


@contextmanager
def feed(
    client: httpx.Client, session_id: str, headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Iterator[Iterator[dict[str, Any]]]:
    """The feed's events as dicts (id, event, data); the connection closes on exit."""
    with client.stream("GET", f"/api/sessions/{session_id}/live", headers=headers or CLIENT,
                       params=params, timeout=httpx.Timeout(20.0)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield events(response.iter_lines())


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):  # ":" lines are keep-alive comments
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def take(stream: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [next(stream) for _ in range(n)]


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
