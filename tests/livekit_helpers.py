"""Real LiveKit SDK objects without a server: rooms that are never connected, participants
built from the SDK's own protobuf messages (as the FFI layer hands them to the room)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from uuid import UUID

from livekit import rtc
from livekit.rtc._proto import participant_pb2

from clara_es.application import VoiceSessions, session_history

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
    """Run one test's coroutine on a fresh event loop (an rtc.Room needs one to exist).

    On virtual time a test takes milliseconds; the timeout only turns a hang into a failure.
    """
    return asyncio.run(asyncio.wait_for(main(), timeout))


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


def as_agent(room: rtc.Room, identity: str = "agent") -> rtc.Room:
    """Give a never-connected room the local participant a connect would have made (the FFI
    event handler of livekit 1.1 looks it up for every participant event)."""
    info = participant_pb2.ParticipantInfo(identity=identity, sid=f"PA_{identity}")
    room._local_participant = rtc.LocalParticipant(
        room._room_queue, participant_pb2.OwnedParticipant(info=info)
    )
    return room
