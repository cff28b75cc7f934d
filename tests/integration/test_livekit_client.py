"""Two reconnecting clients of one session, in two applications on one store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from livekit import rtc

from clara_es.adapters.livekit import AsyncVirtualClock, ReconnectingClient
from clara_es.domain import VirtualClock, commands
from tests.support.apps import AppFactory
from tests.support.livekit_sdk import TOKEN, URL, Network, recorded, run


def test_two_clients_of_one_session_never_connect_at_once(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """Two processes (two applications on one store) follow the same outage."""
    first_app, second_app = make_app(), make_app()

    async def main() -> None:
        start = commands.StartSession(room="room-1", participant="alice")
        session_id = first_app.handle(start).session_id
        timers = AsyncVirtualClock(clock)
        network = Network(timers)
        rooms = [rtc.Room(), rtc.Room()]
        clients = [
            ReconnectingClient(
                app, session_id, room, URL, TOKEN, clock=timers, connector=network.connect
            )
            for app, room in zip((first_app, second_app), rooms, strict=True)
        ]
        await asyncio.gather(*(c.connect() for c in clients))
        assert len(network.calls) == 1
        network.latency = timedelta(seconds=0.5)
        network.drop(5)
        for room in rooms:
            room.emit("disconnected", rtc.DisconnectReason.UNKNOWN_REASON)
        await timers.run_until(lambda: first_app.status(session_id).connection_state == "connected")
        assert network.most_in_flight == 1
        attempts = [t for t, _ in recorded(first_app, session_id) if t == "ReconnectAttempted"]
        assert len(network.calls) == 1 + len(attempts) == 4  # attempts after 1, 2 and 4 s

    run(main)
