"""Shared by the HTTP tests: the service on the test's store, tokens, a real uvicorn server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from clara_es.adapters.store import Store
from clara_es.domain import VirtualClock
from clara_es.http import Options, Service, create_app
from clara_es.http.auth import Role, mint
from tests.support.waiting import wait_until

API_KEY = "test-key"
API_SECRET = "test-secret-that-is-long-enough-for-hs256"
ROOM = "room-1"
USER = "alice"


def token(role: Role, identity: str = USER, room: str | None = ROOM) -> str:
    return mint(API_KEY, API_SECRET, role, identity, None if role is Role.READ else room)


def bearer(role: Role, identity: str = USER, room: str | None = ROOM) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, identity, room)}"}


CLIENT = bearer(Role.CLIENT)
AGENT = bearer(Role.AGENT, "agent-1")
READER = bearer(Role.READ, "dashboard")


def open_service(store: Store, clock: VirtualClock, **options: Any) -> Service:
    options.setdefault("feed_poll", 0.05)
    options.setdefault("view_poll", 0.01)
    options.setdefault("views_behind_ttl_s", 0.0)  # the header's exact figure, every read
    return Service(store, api_key=API_KEY, api_secret=API_SECRET, clock=clock,
                   options=Options(**options))


@pytest.fixture
def service(store: Store, clock: VirtualClock) -> Service:
    return open_service(store, clock)


@pytest.fixture
def base_url(service: Service) -> Iterator[str]:
    with live_server(create_app(service), service) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


@contextmanager
def live_server(app: FastAPI, service: Service) -> Iterator[str]:
    """The app under a real uvicorn on a free loopback port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        service.changes.close()  # as `clara-es serve` does on SIGTERM
        server.should_exit = True
        thread.join(timeout=15)


def start_session(client: httpx.Client, room: str = ROOM, participant: str = USER) -> str:
    response = client.post("/api/sessions", json={"room": room, "participant": participant},
                           headers=bearer(Role.CLIENT, participant, room))
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def command(
    client: httpx.Client, session_id: str, name: str, body: dict[str, Any] | None = None,
    headers: dict[str, str] = CLIENT,
) -> Any:
    return client.post(f"/api/sessions/{session_id}/{name}", json=body or {}, headers=headers)
