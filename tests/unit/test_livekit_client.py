"""The reconnecting client around a real rtc.Room, on virtual time.

The network is a connector that fails while an outage lasts (a span of virtual time); the
room's own events are emitted on the room as the SDK emits them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import pytest
from livekit import rtc

from clara_es.adapters.livekit import AsyncSystemClock, AsyncVirtualClock, ReconnectingClient
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import (
    FAILURE_TEXT,
    BackoffPolicy,
    ConnectionState,
    InvalidTransition,
    SystemClock,
    UIState,
    VirtualClock,
    commands,
)
from tests.support.apps import AppFactory
from tests.support.livekit_sdk import TOKEN, URL, Network, listeners, on_virtual_time, recorded, run


def setup(
    app: VoiceSessions, clock: VirtualClock, latency: float = 0.0
) -> tuple[UUID, rtc.Room, AsyncVirtualClock, Network, ReconnectingClient]:
    session_id = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    room = rtc.Room()
    timers = AsyncVirtualClock(clock)
    network = Network(timers, latency)
    client = ReconnectingClient(
        app, session_id, room, URL, TOKEN, clock=timers, connector=network.connect
    )
    return session_id, room, timers, network, client


async def collect(changes: AsyncIterator[UIState], into: list[str]) -> None:
    async for state in changes:
        into.append(state.status_text)


def watch(client: ReconnectingClient) -> tuple[list[str], asyncio.Task[None]]:
    """The status texts the client's change stream shows, as they come."""
    statuses: list[str] = []
    return statuses, asyncio.create_task(collect(client.changes(), statuses))


def offsets(calls: list[datetime], start: datetime) -> list[float]:
    return [(c - start).total_seconds() for c in calls]


@on_virtual_time
async def test_a_5_second_drop_recovers_after_the_sdk_resume_and_two_attempts(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers, network, client = setup(app, clock)
    statuses, watcher = watch(client)
    assert (await client.connect()).status_text == "Connected"
    await timers.advance(3)

    network.drop(5)
    dropped_at = timers.now()
    room.emit("reconnecting")  # the SDK tries to resume by itself first
    assert client.state.status_text == "Reconnecting..."
    await timers.advance(2)
    room.emit("disconnected", rtc.DisconnectReason.UNKNOWN_REASON)  # and gives up
    assert client.state.status_text == "Reconnecting... (attempt 1 of 5)"
    await timers.run_until(lambda: client.state.connection_state != "reconnecting")

    assert client.state.connection_state == ConnectionState.CONNECTED
    assert client.state.status_text == "Connected"
    # Attempt 1 a second after the SDK gave up, attempt 2 two seconds later: network back.
    assert offsets(network.calls[1:], dropped_at) == [3.0, 5.0]
    assert recorded(app, session_id, since=3) == [
        ("ResumeStarted", None),
        ("Disconnected", "UNKNOWN_REASON"),
        ("ReconnectScheduled", 1),
        ("ReconnectAttempted", 1),
        ("ReconnectAttemptFailed", 1),
        ("ReconnectScheduled", 2),
        ("ReconnectAttempted", 2),
        ("Reconnected", 2),
    ]
    reconnected = session_history(app, session_id)[-1]
    assert reconnected.details["outage_ms"] == 5000
    await timers.settle()
    assert statuses == [
        "Connecting...",
        "Connected",
        "Reconnecting...",  # ResumeStarted
        "Reconnecting... (attempt 1 of 5)",  # Disconnected, ReconnectScheduled
        "Reconnecting... (attempt 1 of 5)",  # ReconnectAttempted
        "Reconnecting... (attempt 2 of 5)",  # ReconnectAttemptFailed, ReconnectScheduled
        "Reconnecting... (attempt 2 of 5)",  # ReconnectAttempted
        "Connected",  # Reconnected
    ]
    watcher.cancel()



@on_virtual_time
async def test_a_40_second_outage_fails_after_attempts_at_1_2_4_8_16_seconds(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers, network, client = setup(app, clock)
    statuses, watcher = watch(client)
    await client.connect()
    network.drop(40)
    dropped_at = timers.now()
    room.emit("disconnected", rtc.DisconnectReason.SIGNAL_CLOSE)
    await timers.run_until(lambda: client.state.connection_state == "failed")

    assert client.state.status_text == FAILURE_TEXT
    assert client.state.start_enabled
    assert offsets(network.calls[1:], dropped_at) == [1.0, 3.0, 7.0, 15.0, 31.0]
    history = session_history(app, session_id)
    delays = [e.details["delay_ms"] for e in history if e.type == "ReconnectScheduled"]
    assert delays == [1000, 2000, 4000, 8000, 16000]
    errors = [e.details["error"] for e in history if e.type == "ReconnectAttemptFailed"]
    assert errors == ["network unreachable"] * 5
    assert history[-1].type == "Failed"
    # The iterator of changes ends at the final state, which it shows.
    await asyncio.wait_for(watcher, timeout=30)
    assert statuses[-1] == FAILURE_TEXT
    # Failed is final: no attempt after it, even long after the network came back.
    await timers.advance(300)
    assert len(network.calls) == 6



@on_virtual_time
async def test_connect_while_connecting_or_reconnecting_makes_no_second_connect_call(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers, network, client = setup(app, clock, latency=0.5)
    first = asyncio.create_task(client.connect())
    await timers.settle()
    assert len(network.calls) == 1
    assert (await client.connect()).connection_state == ConnectionState.CONNECTING
    await timers.advance(1)
    assert (await first).status_text == "Connected"

    network.drop(10)
    room.emit("reconnecting")
    await client.connect()  # during the SDK's own resume
    room.emit("disconnected", rtc.DisconnectReason.UNKNOWN_REASON)
    await client.connect()  # waiting for attempt 1
    await timers.advance(1.2)  # attempt 1 is in flight (it takes 0.5 s)
    assert network.in_flight == 1
    await client.connect()
    calls_so_far = len(network.calls)
    await timers.run_until(lambda: client.state.connection_state != "reconnecting")

    assert client.state.status_text == "Connected"
    assert calls_so_far == 2  # the user's first connect and attempt 1, nothing else
    assert network.most_in_flight == 1
    refusals = [
        e.details["reason"] for e in session_history(app, session_id)
        if e.type == "SignalIgnored"
    ]
    assert refusals == [
        "connect while connecting: no second connection is started",
        "connect while reconnecting: no second connection is started",
        "connect while reconnecting: no second connection is started",
        "connect while reconnecting: no second connection is started",
    ]



@on_virtual_time
async def test_the_sdk_resuming_on_its_own_needs_no_attempt(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers, network, client = setup(app, clock)
    await client.connect()
    room.emit("reconnecting")
    assert client.state.status_text == "Reconnecting..."
    await timers.advance(1.5)
    room.emit("reconnected")
    await timers.advance(60)
    assert client.state.status_text == "Connected"
    assert len(network.calls) == 1
    assert recorded(app, session_id, since=3) == [("ResumeStarted", None), ("Reconnected", 0)]
    assert session_history(app, session_id)[-1].details["outage_ms"] == 1500



@on_virtual_time
async def test_the_user_leaving_ends_the_session_and_nothing_reconnects(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers, network, client = setup(app, clock)
    await client.connect()
    room.emit("disconnected", rtc.DisconnectReason.CLIENT_INITIATED)
    await timers.advance(60)
    assert client.state.connection_state == ConnectionState.ENDED
    assert client.state.start_enabled
    assert len(network.calls) == 1
    assert recorded(app, session_id, since=3) == [("SessionEnded", "user left the room")]



@on_virtual_time
async def test_leave_during_an_outage_stops_the_schedule(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers, network, client = setup(app, clock)
    await client.connect()
    network.drop(60)
    room.emit("disconnected", rtc.DisconnectReason.UNKNOWN_REASON)
    await timers.advance(1.5)  # attempt 1 failed, attempt 2 is due at 3 s
    state = await client.leave()
    await timers.advance(120)
    assert state.connection_state == ConnectionState.ENDED
    assert len(network.calls) == 2
    assert recorded(app, session_id)[-1] == ("SessionEnded", "user left")
    with pytest.raises(InvalidTransition, match="start a new session"):
        await client.connect()



@on_virtual_time
async def test_a_first_connect_that_fails_follows_the_schedule(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, _, timers, network, client = setup(app, clock)
    network.drop(2)
    state = await client.connect()
    assert state.status_text == "Reconnecting... (attempt 1 of 5)"
    await timers.run_until(lambda: client.state.connection_state != "reconnecting")
    assert client.state.status_text == "Connected"
    assert recorded(app, session_id)[2] == (
        "Disconnected", "connect failed: network unreachable"
    )



@on_virtual_time
async def test_close_removes_the_clients_listeners(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id, room, timers, _network, client = setup(app, clock)
    assert listeners(room) == {
        "reconnecting": 1, "reconnected": 1, "disconnected": 1, "token_refreshed": 1}
    client.close()
    assert listeners(room) == {}
    room.emit("disconnected", rtc.DisconnectReason.UNKNOWN_REASON)
    await timers.advance(10)
    assert recorded(app, session_id) == [("SessionStarted", None)]



def test_by_default_each_attempt_is_the_rooms_real_connect(make_app: AppFactory) -> None:
    """No injected connector: the SDK's own room.connect, against a closed loopback port.

    Real time here (the SDK's connect is real I/O), with a policy of milliseconds.
    """
    app = make_app(clock=SystemClock(), policy=BackoffPolicy(base_delay_ms=10, max_attempts=2))

    async def main() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        start = commands.StartSession(room="room-1", participant="alice")
        session_id = app.handle(start).session_id
        room = rtc.Room()
        client = ReconnectingClient(
            app, session_id, room, f"ws://127.0.0.1:{port}", TOKEN, clock=AsyncSystemClock()
        )
        state = await client.connect()
        assert state.connection_state == ConnectionState.RECONNECTING
        final = [s async for s in client.changes()][-1]
        assert final.status_text == FAILURE_TEXT
        history = session_history(app, session_id)
        assert "Connection refused" in history[2].details["reason"]
        errors = [e.details["error"] for e in history if e.type == "ReconnectAttemptFailed"]
        assert len(errors) == 2
        assert all("Connection refused" in error for error in errors)

    run(main)
