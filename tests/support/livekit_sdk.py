"""Real LiveKit SDK objects without a server: rooms that are never connected, participants
built from the SDK's own protobuf messages (as the FFI layer hands them to the room), and
webhooks signed as a LiveKit server signs them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from google.protobuf.json_format import MessageToJson
from livekit import api, rtc
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent
from livekit.rtc._proto import participant_pb2

from clara_es.adapters.livekit import AsyncVirtualClock
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import VirtualClock

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
    """Run one test's coroutine on a fresh event loop (an rtc.Room needs one to exist).

    On virtual time a test takes milliseconds; the timeout only turns a hang into a failure.
    """
    return asyncio.run(asyncio.wait_for(main(), timeout))


def on_virtual_time(
    test: Callable[[VoiceSessions, VirtualClock], Coroutine[Any, Any, None]],
) -> Callable[[VoiceSessions, VirtualClock], None]:
    """An async test on the `app` and `clock` fixtures, run as a plain test through `run`."""

    def plain(app: VoiceSessions, clock: VirtualClock) -> None:
        run(lambda: test(app, clock))

    plain.__name__ = plain.__qualname__ = test.__name__
    plain.__doc__ = test.__doc__
    return plain


def remote(identity: str, reason: int | None = None) -> rtc.RemoteParticipant:
    info = participant_pb2.ParticipantInfo(identity=identity, sid=f"PA_{identity}")
    if reason is not None:
        info.disconnect_reason = reason
    return rtc.RemoteParticipant(participant_pb2.OwnedParticipant(info=info))


def listeners(room: rtc.Room) -> dict[str, int]:
    """How many callbacks the room's event emitter holds, per event."""
    return {event: len(callbacks) for event, callbacks in room._events.items() if callbacks}


def recorded(app: VoiceSessions, session_id: UUID, since: int = 0) -> list[tuple[str, Any]]:
    """(type, the detail that matters) of the session's events after version `since`."""
    out = []
    for e in session_history(app, session_id)[since:]:
        d = e.details
        detail = d.get("quality") or d.get("connection") or d.get("reason") or d.get("attempt")
        out.append((e.type, detail))
    return out


KEY, SECRET = "APIclaraTest", "a-secret-of-at-least-32-characters-long"
Reason = models.DisconnectReason


def body(
    kind: str, webhook_id: str, room: str = "room-1", identity: str | None = "alice",
    reason: int = Reason.UNKNOWN_REASON, created_at: int = 1_767_225_600,
) -> str:
    """A webhook's JSON; `created_at` is LiveKit's createdAt (whole seconds, default the
    virtual clock's epoch)."""
    event = WebhookEvent(event=kind, id=webhook_id, room=models.Room(name=room, sid="RM_1"),
                         created_at=created_at)
    if identity is not None:
        event.participant.CopyFrom(
            models.ParticipantInfo(identity=identity, sid="PA_1", disconnect_reason=reason)
        )
    return MessageToJson(event)


def sign(text: str, key: str = KEY, secret: str = SECRET, ttl: float = 300) -> str:
    """The Authorization header LiveKit sends: a JWT carrying the body's sha256."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return (
        api.AccessToken(key, secret).with_sha256(digest).with_ttl(timedelta(seconds=ttl)).to_jwt()
    )


URL, TOKEN = "ws://127.0.0.1:7880", "a-token"


class Network:
    """Connect succeeds unless the network is down; each connect takes `latency`."""

    def __init__(self, timers: AsyncVirtualClock, latency: float = 0.0) -> None:
        self.timers = timers
        self.latency = timedelta(seconds=latency)
        self.down: tuple[datetime, datetime] | None = None
        self.calls: list[datetime] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def drop(self, seconds: float) -> None:
        now = self.timers.now()
        self.down = (now, now + timedelta(seconds=seconds))

    async def connect(self, url: str, token: str) -> None:
        assert (url, token) == (URL, TOKEN)
        self.calls.append(self.timers.now())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.timers.sleep_until(self.timers.now() + self.latency)
            if self.down and self.down[0] <= self.timers.now() < self.down[1]:
                raise rtc.ConnectError("network unreachable")
        finally:
            self.in_flight -= 1


def as_agent(room: rtc.Room, identity: str = "agent") -> rtc.Room:
    """Give a never-connected room the local participant a connect would have made (the FFI
    event handler of livekit 1.1 looks it up for every participant event)."""
    info = participant_pb2.ParticipantInfo(identity=identity, sid=f"PA_{identity}")
    room._local_participant = rtc.LocalParticipant(
        room._room_queue, participant_pb2.OwnedParticipant(info=info)
    )
    return room
