"""The agent's monitor on real rtc.Room objects, recording into the application."""

from __future__ import annotations

from uuid import UUID

from livekit import rtc
from livekit.rtc._proto import participant_pb2, room_pb2

from clara_es.adapters.livekit import AgentMonitor, AsyncVirtualClock
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import Actor, ConnectionState, VirtualClock, commands
from tests.support.livekit_sdk import as_agent, listeners, on_virtual_time, recorded, remote
from tests.support.scenarios import connected as connected_session

Q = rtc.ConnectionQuality


def monitored(app: VoiceSessions, clock: VirtualClock) -> tuple[UUID, rtc.Room, AsyncVirtualClock]:
    session_id = connected_session(app)
    room = as_agent(rtc.Room())
    timers = AsyncVirtualClock(clock)
    AgentMonitor(app, session_id, timers).attach(room)
    return session_id, room, timers


def quality(room: rtc.Room, value: rtc.ConnectionQuality, identity: str = "alice") -> None:
    """LiveKit tells the agent's room a participant's connection quality."""
    room.emit("connection_quality_changed", remote(identity), value)


def leaves(room: rtc.Room, reason: int | None = None, identity: str = "alice") -> None:
    """LiveKit tells the agent's room a participant left (with its DisconnectReason, if any)."""
    room.emit("participant_disconnected", remote(identity, reason))


@on_virtual_time
async def test_poor_then_good_within_the_window_records_changes_but_no_restart(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers = monitored(app, clock)
    quality(room, Q.QUALITY_GOOD)
    quality(room, Q.QUALITY_GOOD)  # a repeat
    quality(room, Q.QUALITY_POOR)
    await timers.advance(1)
    quality(room, Q.QUALITY_EXCELLENT)
    await timers.advance(2.5)  # past where the first window would have ended
    quality(room, Q.QUALITY_LOST)
    await timers.advance(2.9)
    quality(room, Q.QUALITY_GOOD)
    await timers.advance(60)
    assert recorded(app, session_id, since=3) == [
        ("QualityChanged", "good"),
        ("QualityChanged", "poor"),
        ("QualityChanged", "excellent"),
        ("QualityChanged", "lost"),
        ("QualityChanged", "good"),
    ]



@on_virtual_time
async def test_poor_held_for_long_is_reported_as_quality_only(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    """Whether a spell lasted the window is the process manager's timer, not the monitor's:
    the monitor never confirms poor quality itself (test_process_reactions)."""
    session_id, room, timers = monitored(app, clock)
    quality(room, Q.QUALITY_POOR)
    quality(room, Q.QUALITY_LOST)
    await timers.advance(60)
    events = session_history(app, session_id)[3:]
    assert [(e.type, e.details["quality"], e.actor) for e in events] == [
        ("QualityChanged", "poor", "agent"),
        ("QualityChanged", "lost", "agent"),
    ]


@on_virtual_time
async def test_other_participants_quality_is_not_this_sessions(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers = monitored(app, clock)
    quality(room, Q.QUALITY_LOST, "bob")
    room.emit("connection_quality_changed", None, Q.QUALITY_LOST)  # an unknown identity
    await timers.advance(10)
    assert recorded(app, session_id, since=3) == []



@on_virtual_time
async def test_the_participant_leaving_records_disconnected_once(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, _timers = monitored(app, clock)
    leaves(room, identity="bob")
    leaves(room, rtc.DisconnectReason.CONNECTION_TIMEOUT)
    # The client reports the same outage: one outage, one schedule.
    app.handle(commands.ReportDisconnected(reason="network", actor=Actor.CLIENT), session_id)
    assert recorded(app, session_id, since=3) == [
        ("Disconnected", "CONNECTION_TIMEOUT"),
        ("ReconnectScheduled", 1),
        ("SignalIgnored", "already reconnecting (attempt 1): one outage, one schedule"),
    ]
    # Alice comes back: the agent sees her join again.
    room.emit("participant_connected", remote("alice"))
    assert app.status(session_id).status_text == "Connected"
    assert recorded(app, session_id)[-1] == ("Reconnected", 1)



@on_virtual_time
async def test_the_participant_leaving_on_purpose_ends_the_session(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, _ = monitored(app, clock)
    leaves(room, rtc.DisconnectReason.CLIENT_INITIATED)
    state = app.status(session_id)
    assert state.connection_state == ConnectionState.ENDED
    assert recorded(app, session_id, since=3) == [
        ("SessionEnded", "participant left (CLIENT_INITIATED)")
    ]



@on_virtual_time
async def test_a_full_sdk_reconnect_of_the_agent_is_not_the_users_outage(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers = monitored(app, clock)
    room.emit("reconnecting")
    room.emit("connection_state_changed", rtc.ConnectionState.CONN_RECONNECTING)
    leaves(room)  # the SDK drops every remote
    await timers.advance(4)
    room.emit("reconnected")
    room.emit("participant_connected", remote("alice"))  # and adds them back
    state = app.status(session_id)
    assert state.connection_state == ConnectionState.CONNECTED
    assert state.status_text == "Connected"
    types = recorded(app, session_id, since=3)
    assert types == [
        ("AgentConnectionChanged", "reconnecting"),
        (
            "SignalIgnored",
            "participant left while the agent itself was reconnecting: "
            "the agent's outage, not the user's",
        ),
        ("AgentConnectionChanged", "connected"),
    ]
    # After the agent is back, alice leaving is her outage again (once the agent's own
    # reconnect did not follow within the settle time).
    leaves(room)
    await timers.advance(1)
    assert app.status(session_id).connection_state == ConnectionState.RECONNECTING
    assert recorded(app, session_id)[-2:] == [
        ("Disconnected", "UNKNOWN_REASON"),
        ("ReconnectScheduled", 1),
    ]



@on_virtual_time
async def test_the_agent_losing_the_room_is_recorded_without_failing_the_user(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, _ = monitored(app, clock)
    room.emit("disconnected", rtc.DisconnectReason.SERVER_SHUTDOWN)
    assert app.status(session_id).connection_state == ConnectionState.CONNECTED
    assert recorded(app, session_id, since=3) == [
        ("AgentConnectionChanged", "disconnected")
    ]
    assert session_history(app, session_id)[-1].details["reason"] == "SERVER_SHUTDOWN"



@on_virtual_time
async def test_events_dispatched_by_the_rooms_own_ffi_handler(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    """The same path a connected room takes: FFI protobuf events through Room's dispatcher."""
    session_id, room, _ = monitored(app, clock)
    owned = participant_pb2.OwnedParticipant(
        info=participant_pb2.ParticipantInfo(identity="alice", sid="PA_alice")
    )
    room._on_room_event(room_pb2.RoomEvent(participant_connected={"info": owned}))
    room._on_room_event(
        room_pb2.RoomEvent(
            connection_quality_changed={"participant_identity": "alice", "quality": 0}
        )
    )
    room._on_room_event(room_pb2.RoomEvent(reconnecting={}))
    room._on_room_event(
        room_pb2.RoomEvent(participant_disconnected={"participant_identity": "alice"})
    )
    room._on_room_event(room_pb2.RoomEvent(reconnected={}))
    assert recorded(app, session_id, since=3) == [
        ("QualityChanged", "poor"),
        ("AgentConnectionChanged", "reconnecting"),
        ("SignalIgnored", "participant left while the agent itself was reconnecting: "
                          "the agent's outage, not the user's"),
        ("AgentConnectionChanged", "connected"),
    ]



@on_virtual_time
async def test_detaching_removes_every_listener_and_the_pending_window(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id = connected_session(app)
    room = rtc.Room()
    room.on("participant_connected", lambda participant: None)  # someone else's
    before = listeners(room)
    timers = AsyncVirtualClock(clock)
    monitor = AgentMonitor(app, session_id, timers)
    monitor.attach(room)
    assert sum(listeners(room).values()) == sum(before.values()) + 7
    quality(room, Q.QUALITY_POOR)
    monitor.detach()
    assert listeners(room) == before
    for event, args in [
        ("connection_quality_changed", (remote("alice"), Q.QUALITY_GOOD)),
        ("participant_disconnected", (remote("alice"),)),
        ("reconnecting", ()),
        ("disconnected", (rtc.DisconnectReason.UNKNOWN_REASON,)),
    ]:
        room.emit(event, *args)
    await timers.advance(60)
    assert recorded(app, session_id, since=3) == [("QualityChanged", "poor")]
    monitor.attach(room)  # a detached monitor can attach again
    assert sum(listeners(room).values()) == sum(before.values()) + 7



@on_virtual_time
async def test_a_forced_full_reconnect_in_the_sdks_order_is_not_the_users_outage(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    """livekit-ffi's handle_restarting drops every remote participant (no reason, room still
    connected) before it reports connection_state_changed and reconnecting."""
    session_id, room, timers = monitored(app, clock)
    room._on_room_event(
        room_pb2.RoomEvent(participant_connected={"info": participant_pb2.OwnedParticipant(
            info=participant_pb2.ParticipantInfo(identity="alice", sid="PA_alice"))})
    )
    room._on_room_event(
        room_pb2.RoomEvent(participant_disconnected={"participant_identity": "alice"})
    )
    room._on_room_event(room_pb2.RoomEvent(
        connection_state_changed={"state": rtc.ConnectionState.CONN_RECONNECTING}
    ))
    room._on_room_event(room_pb2.RoomEvent(reconnecting={}))
    await timers.advance(5)
    room._on_room_event(room_pb2.RoomEvent(reconnected={}))
    state = app.status(session_id)
    assert state.connection_state == ConnectionState.CONNECTED
    assert recorded(app, session_id, since=3) == [
        ("AgentConnectionChanged", "reconnecting"),
        ("SignalIgnored", "participant left while the agent itself was reconnecting: "
                          "the agent's outage, not the user's"),
        ("AgentConnectionChanged", "connected"),
    ]
    assert "ReconnectScheduled" not in [t for t, _ in recorded(app, session_id)]



@on_virtual_time
async def test_a_departure_without_reason_and_no_agent_reconnect_is_the_users_outage(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, room, timers = monitored(app, clock)
    leaves(room)
    await timers.advance(0.9)
    assert app.status(session_id).connection_state == ConnectionState.CONNECTED
    await timers.advance(0.1)
    assert recorded(app, session_id, since=3) == [
        ("Disconnected", "UNKNOWN_REASON"),
        ("ReconnectScheduled", 1),
    ]



@on_virtual_time
async def test_removed_or_replaced_participants_end_the_session(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    for reason in ("PARTICIPANT_REMOVED", "DUPLICATE_IDENTITY", "ROOM_DELETED"):
        session_id, room, _ = monitored(app, clock)
        code = rtc.DisconnectReason.Value(reason)
        leaves(room, code)
        assert recorded(app, session_id, since=3) == [
            ("SessionEnded", f"participant left ({reason})")
        ]

