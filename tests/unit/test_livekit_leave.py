"""The LiveKit client: leave reasons decide between ending and reconnecting, and every
reconnect attempt joins with a fresh rtc.Room."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from livekit import rtc

from clara_es.adapters.livekit import AsyncVirtualClock, ReconnectingClient
from clara_es.adapters.livekit.leave_reasons import leave_reason
from clara_es.application import VoiceSessions, session_history
from clara_es.client import Client, InProcessTransport
from clara_es.domain import ConnectionState, VirtualClock, commands

R = rtc.DisconnectReason


def _client(
    rooms: list[rtc.Room], calls: list[str], fail: bool = False
) -> tuple[VoiceSessions, ReconnectingClient, AsyncVirtualClock]:
    clock = VirtualClock()
    app = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    sid = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    timers = AsyncVirtualClock(clock)

    async def connect(url: str, token: str) -> None:
        calls.append(token)
        if fail:
            raise rtc.ConnectError("network unreachable")

    def fresh() -> rtc.Room:
        rooms.append(rtc.Room())
        return rooms[-1]

    client = ReconnectingClient(app, sid, fresh(), "ws://127.0.0.1:7880", "token-1",
                                clock=timers, connector=connect, room_factory=fresh)
    return app, client, timers


@pytest.mark.parametrize("reason", [
    R.PARTICIPANT_REMOVED, R.DUPLICATE_IDENTITY, R.ROOM_DELETED, R.CLIENT_INITIATED])
def test_being_removed_replaced_or_losing_the_room_ends_the_session(reason: int) -> None:
    async def main() -> None:
        rooms: list[rtc.Room] = []
        calls: list[str] = []
        _, client, timers = _client(rooms, calls)
        await client.connect()
        rooms[-1].emit("disconnected", reason)
        await timers.advance(60)
        assert client.state.connection_state == ConnectionState.ENDED
        assert calls == ["token-1"]  # nothing reconnected

    asyncio.run(main())


@pytest.mark.parametrize("reason", [R.SIGNAL_CLOSE, R.SERVER_SHUTDOWN, R.MIGRATION,
                                    R.JOIN_FAILURE, R.UNKNOWN_REASON, None])
def test_transport_and_server_failures_reconnect(reason: int | None) -> None:
    assert not leave_reason(reason).ends_session


def test_every_attempt_joins_with_a_fresh_room_and_the_refreshed_token() -> None:
    async def main() -> None:
        rooms: list[rtc.Room] = []
        calls: list[str] = []
        _, client, timers = _client(rooms, calls, fail=False)
        await client.connect()
        first = rooms[-1]
        first._token = "token-2"  # what the SDK stores on `token_refreshed`
        first.emit("token_refreshed")
        first.emit("disconnected", R.SIGNAL_CLOSE)
        await timers.run_until(lambda: client.state.connection_state != "reconnecting")
        assert client.state.connection_state == ConnectionState.CONNECTED
        assert calls == ["token-1", "token-2"]
        assert len(rooms) == 2 and client.room is rooms[1]
        first.emit("disconnected", R.SIGNAL_CLOSE)  # the old room is no longer listened to
        await timers.advance(10)
        assert client.state.connection_state == ConnectionState.CONNECTED

    asyncio.run(main())


def test_the_sdk_s_own_resume_comes_first_then_the_schedule_counts_from_its_give_up() -> None:
    """rtc 1.2 resumes by itself first: up to 10 tries over about 37 s (`reconnecting`), then
    `disconnected`. The status says Reconnecting... all along; attempt 1 is due a second after
    the SDK gave up, and the outage is measured from the resume's start."""

    async def main() -> None:
        rooms: list[rtc.Room] = []
        calls: list[str] = []
        app, client, timers = _client(rooms, calls)
        await client.connect()
        rooms[-1].emit("reconnecting")
        for _ in range(10):
            await timers.advance(3.7)
            assert client.state.status_text == "Reconnecting..."
        rooms[-1].emit("disconnected", R.SIGNAL_CLOSE)
        assert client.state.status_text == "Reconnecting... (attempt 1 of 5)"
        await timers.run_until(lambda: client.state.connection_state != "reconnecting")
        assert client.state.status_text == "Connected"
        reconnected = session_history(app, client.session_id)[-1]
        # 37 s of the SDK's resume, then attempt 1 a second later
        assert (reconnected.type, reconnected.details["outage_ms"]) == ("Reconnected", 38000)
        assert len(rooms) == 2  # the attempt joined with a fresh Room

    asyncio.run(main())


def test_the_livekit_client_runs_on_the_outbox_client_without_the_store(tmp_path: Path) -> None:
    """The ReconnectingClient decides through clara_es.client: the screen follows the outage
    while the service hears nothing; once it answers, it holds the same history."""

    async def main() -> None:
        clock = VirtualClock()
        service = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
        link = InProcessTransport(service)
        local = Client.start(link, tmp_path / "outbox.db", clock, "room-1", "alice")
        timers = AsyncVirtualClock(clock)
        network_back_at = clock.now() + timedelta(seconds=6)

        async def connect(url: str, token: str) -> None:
            if not link.reachable and clock.now() < network_back_at:  # WiFi off for 6 s
                raise rtc.ConnectError("network unreachable")

        room = rtc.Room()
        client = ReconnectingClient(local, local.session_id, room, "ws://127.0.0.1:7880", "t",
                                    clock=timers, connector=connect)
        await client.connect()
        link.reachable = False
        room.emit("disconnected", R.SIGNAL_CLOSE)
        assert client.state.status_text == "Reconnecting... (attempt 1 of 5)"
        await timers.run_until(lambda: client.state.connection_state != "reconnecting")
        assert client.state.status_text == "Connected"
        assert service.status(local.session_id).status_text == "Connected"  # heard nothing
        assert len(local.pending()) == 7  # the drop, attempts 1 and 2 failed, 3 reconnected
        link.reachable = True
        assert local.flush() and local.pending() == []
        types = [e.type for e in session_history(service, local.session_id)]
        assert types[-4:] == ["ReconnectAttemptFailed", "ReconnectScheduled",
                              "ReconnectAttempted", "Reconnected"]
        local.close()

    asyncio.run(main())
