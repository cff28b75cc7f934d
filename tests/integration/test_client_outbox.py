"""clara_es.client: the schedule run locally while the service is unreachable, every fact kept
in a SQLite outbox and delivered once the service answers, across a restart of the client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from clara_es.adapters.store import Store
from clara_es.application import session_history
from clara_es.client import Client, HttpTransport, Unreachable
from clara_es.domain import FAILURE_TEXT, ConnectionState, VirtualClock, commands
from clara_es.domain.schedule import due_attempt
from clara_es.http import Options, Service, create_app
from clara_es.http.auth import Role, mint
from tests.support.waiting import wait_until

SECRET = "test-secret-that-is-long-enough-for-hs256"
TOKEN = mint("test-key", SECRET, Role.CLIENT, "alice", "room-1")


@pytest.fixture
def service(store: Store, clock: VirtualClock) -> Iterator[Service]:
    yield Service(store, api_key="test-key", api_secret=SECRET, clock=clock,
                  options=Options(feed_poll=0.05, view_poll=0.01))


@pytest.fixture
def online(service: Service) -> Iterator[HttpTransport]:
    with TestClient(create_app(service)) as http:
        yield HttpTransport("http://testserver", TOKEN, http=http)


@pytest.fixture
def offline() -> HttpTransport:
    """The service's address with nothing listening: every call is refused, as in an outage."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return HttpTransport(f"http://127.0.0.1:{port}", TOKEN, retries=0, timeout=2)


@pytest.fixture
def client(tmp_path: Path, clock: VirtualClock, online: HttpTransport) -> Iterator[Client]:
    """A client whose session is connected, its outbox in a SQLite file."""
    started = Client.start(online, tmp_path / "outbox.db", clock, "room-1", "alice")
    started.connect()
    assert started.connected().status_text == "Connected"
    yield started
    started.close()


def _history(service: Service, sid: UUID) -> list[tuple[str, float, str | None]]:
    entries = session_history(service.app, sid)
    t0 = entries[0].occurred_at
    return [(e.type, (e.occurred_at - t0).total_seconds(), e.cause.get("idempotency_key"))
            for e in entries]


def test_the_spec_s_30_second_outage_runs_offline_and_is_delivered_after(
    client: Client, clock: VirtualClock, service: Service, online: HttpTransport,
    offline: HttpTransport,
) -> None:
    assert client.pending() == []

    client.transport = offline  # WiFi off: the service cannot be reached for 30 s
    back_at = clock.now() + timedelta(seconds=30)
    shown: list[str] = []
    client.listeners.append(lambda state: shown.append(state.status_text))
    drop = clock.now()
    client.disconnected("wifi off")
    final = client.follow(clock.advance_to, lambda _n: None if clock.now() >= back_at
                          else "network unreachable")

    # Attempts at 1, 3, 7, 15 s fail; the fifth, at 31 s, finds the network back.
    assert final.connection_state == ConnectionState.CONNECTED
    assert shown[0] == "Reconnecting... (attempt 1 of 5)"
    assert shown[-2:] == ["Reconnecting... (attempt 5 of 5)", "Connected"]
    assert FAILURE_TEXT not in shown
    assert round((clock.now() - drop).total_seconds()) == 31  # 1 + 2 + 4 + 8 + 16
    assert len(client.pending()) == 11  # the drop, five starts, four failures, the success
    assert service.app.status(client.session_id).connection_state == ConnectionState.CONNECTED

    clock.advance(5)
    client.transport = online  # the link is back
    assert client.flush() is True
    assert client.pending() == []
    assert client.service_state is not None
    assert client.service_state.status_text == "Connected"

    history = _history(service, client.session_id)
    scheduled = [t for kind, t, _ in history if kind == "ReconnectScheduled"]
    started = [t for kind, t, _ in history if kind == "ReconnectAttempted"]
    assert [round(s - d, 3) for s, d in zip(started, scheduled, strict=True)] == [1, 2, 4, 8, 16]
    keys = [key for kind, _, key in history if kind in ("Disconnected", "ReconnectAttempted")]
    assert len(set(keys)) == len(keys) == 6  # every fact once, with its own key

    assert [kind for kind, _, _ in history][-2:] == ["ReconnectAttempted", "Reconnected"]


def test_a_40_second_outage_fails_offline_with_start_enabled(
    client: Client, clock: VirtualClock, service: Service, online: HttpTransport,
    offline: HttpTransport,
) -> None:
    client.transport = offline
    client.disconnected("wifi off")
    final = client.follow(clock.advance_to, lambda _n: "network unreachable")
    assert (final.status_text, final.start_enabled) == (FAILURE_TEXT, True)
    client.transport = online
    assert client.flush() is True
    assert service.app.status(client.session_id).status_text == FAILURE_TEXT


def test_a_client_restarted_mid_outbox_delivers_what_it_had_kept(
    tmp_path: Path, clock: VirtualClock, service: Service, online: HttpTransport,
    offline: HttpTransport,
) -> None:
    path = tmp_path / "outbox.db"
    first = Client.start(online, path, clock, "room-1", "alice")
    first.connect()
    first.connected()
    first.transport = offline
    first.disconnected("wifi off")
    clock.advance(1)
    first.report(first_due(first))
    assert len(first.pending()) == 2
    # The client process dies here (nothing closed, nothing flushed).

    with pytest.raises(Unreachable):
        offline.send(first.session_id, clock.now(), [])
    clock.advance(1)
    again = Client.resume(online, path, clock)
    assert again.session_id == first.session_id
    assert again.state.status_text == "Reconnecting... (attempt 1 of 5)"
    assert again.state.next_retry_at is None  # attempt 1 is in flight, as before the restart
    assert again.pending() == []
    stored = service.app.status(again.session_id)
    assert (stored.connection_state, stored.attempt) == (ConnectionState.RECONNECTING, 1)

    version = service.app.session(again.session_id).version
    assert Client.resume(online, path, clock).pending() == []
    assert service.app.session(again.session_id).version == version



def first_due(client: Client) -> commands.StartAttempt:
    due = due_attempt(client.state)
    assert due is not None
    return due.command()


def test_a_background_flusher_delivers_once_the_service_answers(
    client: Client, service: Service, online: HttpTransport, offline: HttpTransport,
) -> None:
    client.transport = offline
    client.start_flushing(every=0.05)
    assert client.disconnected("wifi off").status_text == "Reconnecting... (attempt 1 of 5)"
    assert service.app.status(client.session_id).status_text == "Connected"
    client.transport = online
    wait_until(lambda: not client.pending(), what="the flusher to deliver the outbox")
    assert service.app.status(client.session_id).status_text == "Reconnecting... (attempt 1 of 5)"
    client.stop_flushing()
