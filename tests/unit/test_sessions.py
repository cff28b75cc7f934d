"""The client connection state machine, through VoiceSessions."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from clara_es.application import InvalidCommand, VoiceSessions, session_history
from clara_es.domain import (
    FAILURE_TEXT,
    Actor,
    BackoffPolicy,
    ConnectionState,
    InvalidTransition,
    SessionNotFound,
    VirtualClock,
    commands,
)
from tests.support.scenarios import connected as connected_session
from tests.support.scenarios import due as wait_for_retry


def types(app: VoiceSessions, session_id: UUID) -> list[str]:
    return [entry.type for entry in session_history(app, session_id)]


def failed_session(app: VoiceSessions, clock: VirtualClock) -> UUID:
    """A connected session whose every reconnect attempt failed."""
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(), session_id)
    for attempt in range(1, 6):
        wait_for_retry(app, clock, session_id)
        app.handle(commands.FailAttempt(attempt=attempt, error="down"), session_id)
    return session_id


def test_start_and_connect(app: VoiceSessions) -> None:
    started = app.handle(commands.StartSession(room="room-1", participant="alice"))
    assert started.connection_state == ConnectionState.IDLE
    assert started.start_enabled
    connecting = app.handle(commands.Connect(), started.session_id)
    assert connecting.status_text == "Connecting..."
    assert not connecting.start_enabled
    connected = app.handle(commands.MarkConnected(), started.session_id)
    assert connected.status_text == "Connected"
    assert connected.connection_state == ConnectionState.CONNECTED


def test_short_drop_recovers_without_user_action(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = connected_session(app)
    state = app.handle(commands.ReportDisconnected(reason="network"), session_id)
    assert state.status_text == "Reconnecting... (attempt 1 of 5)"
    assert not state.start_enabled
    assert state.next_retry_at == clock.now() + timedelta(seconds=1)
    clock.advance(1)
    app.handle(commands.StartAttempt(attempt=1), session_id)
    clock.advance(0.2)
    back = app.handle(commands.ReportReconnected(), session_id)
    assert back.status_text == "Connected"
    assert back.attempt == 0
    entries = session_history(app, session_id)
    reconnected = entries[-1]
    assert reconnected.type == "Reconnected"
    assert reconnected.details == {"attempt": 1, "outage_ms": 1200}


def test_long_outage_fails_after_five_attempts_with_spec_delays(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    for expected in range(1, 6):
        attempt = wait_for_retry(app, clock, session_id)
        assert attempt == expected
        app.handle(commands.StartAttempt(attempt=attempt), session_id)
        failure = commands.FailAttempt(attempt=attempt, error="network unreachable")
        state = app.handle(failure, session_id)
    assert state.connection_state == ConnectionState.FAILED
    assert state.status_text == FAILURE_TEXT
    assert state.start_enabled
    entries = session_history(app, session_id)
    delays = [e.details["delay_ms"] for e in entries if e.type == "ReconnectScheduled"]
    assert delays == [1000, 2000, 4000, 8000, 16000]
    assert entries[-1].type == "Failed"
    assert entries[-1].details == {"reason": "max reconnect attempts reached", "attempts": 5}
    assert entries[-1].occurred_at - entries[0].occurred_at == timedelta(seconds=31)


def test_counter_resets_after_a_recovery(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(), session_id)
    for attempt in (1, 2):
        wait_for_retry(app, clock, session_id)
        app.handle(commands.StartAttempt(attempt=attempt), session_id)
        app.handle(commands.FailAttempt(attempt=attempt, error="down"), session_id)
    app.handle(commands.ReportReconnected(), session_id)
    again = app.handle(commands.ReportDisconnected(), session_id)
    assert again.attempt == 1
    assert again.next_retry_at == clock.now() + timedelta(seconds=1)


# ---- the races of DESIGN.md section 3 that concern the client state machine ----------------


def test_second_disconnect_while_reconnecting_schedules_nothing(app: VoiceSessions) -> None:
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    before = app.status(session_id)
    after = app.handle(commands.ReportDisconnected(reason="network"), session_id)
    assert after.next_retry_at == before.next_retry_at
    assert types(app, session_id)[-3:] == ["Disconnected", "ReconnectScheduled", "SignalIgnored"]
    ignored = session_history(app, session_id)[-1]
    assert ignored.details["signal"] == "disconnected"
    assert "one outage, one schedule" in ignored.details["reason"]


def test_stale_timer_for_an_old_attempt_is_ignored(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(), session_id)
    wait_for_retry(app, clock, session_id)
    app.handle(commands.StartAttempt(attempt=1), session_id)
    app.handle(commands.FailAttempt(attempt=1, error="down"), session_id)
    # attempt 1's timer, late
    state = app.handle(commands.StartAttempt(attempt=1, actor=Actor.SYSTEM), session_id)
    assert state.attempt == 2
    last = session_history(app, session_id)[-1]
    assert last.type == "SignalIgnored"
    assert last.details["reason"] == "stale timer: attempt 1 fired, current is 2"
    assert last.actor == "system"


def test_timer_after_reconnect_is_a_recorded_no_op(app: VoiceSessions) -> None:
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(), session_id)
    app.handle(commands.ReportReconnected(), session_id)  # the SDK resumed before the timer fired
    state = app.handle(commands.StartAttempt(attempt=1, actor=Actor.SYSTEM), session_id)
    assert state.connection_state == ConnectionState.CONNECTED
    assert types(app, session_id)[-2:] == ["Reconnected", "SignalIgnored"]


def test_reconnected_after_failed_stays_failed(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = failed_session(app, clock)
    state = app.handle(commands.ReportReconnected(), session_id)
    assert state.connection_state == ConnectionState.FAILED
    assert state.status_text == FAILURE_TEXT
    last = session_history(app, session_id)[-1]
    assert last.type == "SignalIgnored"
    assert last.details["reason"] == "reconnected after Failed: the session stays failed"


def test_connect_while_reconnecting_starts_nothing_new(app: VoiceSessions) -> None:
    session_id = connected_session(app)
    app.handle(commands.ReportDisconnected(), session_id)
    state = app.handle(commands.Connect(), session_id)
    assert state.connection_state == ConnectionState.RECONNECTING
    assert types(app, session_id)[-1] == "SignalIgnored"
    assert types(app, session_id).count("Connecting") == 1


def test_connect_while_connecting_starts_nothing_new(app: VoiceSessions) -> None:
    session_id = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    app.handle(commands.Connect(), session_id)
    app.handle(commands.Connect(), session_id)
    assert types(app, session_id) == ["SessionStarted", "Connecting", "SignalIgnored"]


# ---- refusals append nothing --------------------------------------------------------------


def test_connect_on_a_failed_session_is_refused(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = failed_session(app, clock)
    before = types(app, session_id)
    with pytest.raises(InvalidTransition, match="start a new session"):
        app.handle(commands.Connect(), session_id)
    assert types(app, session_id) == before


@pytest.mark.parametrize(
    ("command", "fields", "error"),
    [
        (commands.ReportDisconnected, {}, InvalidTransition),
        (commands.ReportReconnected, {}, InvalidTransition),
        (commands.StartAttempt, {"attempt": 0}, InvalidCommand),
        (commands.ChangeQuality, {"participant": "alice", "quality": "bad"}, InvalidCommand),
        (commands.ChangeQuality, {"participant": "mallory", "quality": "poor"}, InvalidTransition),
        (commands.ConfirmPoorQuality, {"participant": "mallory"}, InvalidTransition),
        (commands.ChangeAgentConnection, {"connection": "asleep"}, InvalidCommand),
        (commands.StartResume, {}, InvalidTransition),
    ],
)
def test_refused_commands_append_nothing(
    app: VoiceSessions,
    command: type[commands.Command],
    fields: dict[str, object],
    error: type[Exception],
) -> None:
    session_id = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    with pytest.raises(error):
        app.handle(command.build(**fields), session_id)
    assert types(app, session_id) == ["SessionStarted"]


def test_unknown_session_is_not_found(app: VoiceSessions) -> None:
    with pytest.raises(SessionNotFound):
        app.handle(commands.Connect(), uuid4())


def test_session_needs_room_and_participant(app: VoiceSessions) -> None:
    with pytest.raises(InvalidCommand, match="start: room: String should have at least 1"):
        app.handle(commands.StartSession.build(room="", participant="alice"))
    with pytest.raises(InvalidCommand, match="start: participant"):
        app.handle(commands.StartSession.build(room="room", participant=""))


# ---- quality, ending, causality ---------------------------------------------------------------


def test_quality_records_changes_and_poor_once(app: VoiceSessions) -> None:
    """Changes are recorded as they come; QualityPoor only once a poor spell is confirmed.

    The agent confirms after its window (tests/test_livekit_agent_monitor.py); here the
    confirmations arrive as commands: once per spell, never for a spell that recovered.
    """
    session_id = connected_session(app)
    for quality in ("good", "good", "poor"):
        app.handle(commands.ChangeQuality.build(participant="alice", quality=quality), session_id)
    app.handle(commands.ConfirmPoorQuality.build(participant="alice"), session_id)
    app.handle(commands.ChangeQuality.build(participant="alice", quality="lost"), session_id)
    # the same spell: no second QualityPoor
    app.handle(commands.ConfirmPoorQuality.build(participant="alice"), session_id)
    app.handle(commands.ChangeQuality.build(participant="alice", quality="good"), session_id)
    # a late timer after the recovery
    app.handle(commands.ConfirmPoorQuality.build(participant="alice"), session_id)
    recorded = [
        (e.type, e.details.get("quality") or e.details.get("reason"))
        for e in session_history(app, session_id)[3:]
    ]
    assert recorded == [
        ("QualityChanged", "good"),
        ("QualityChanged", "poor"),
        ("QualityPoor", "poor"),
        ("QualityChanged", "lost"),
        ("SignalIgnored", "poor quality already confirmed for this spell"),
        ("QualityChanged", "good"),
        ("SignalIgnored", "quality recovered to good within the window"),
    ]


def test_ended_is_final(app: VoiceSessions) -> None:
    session_id = connected_session(app)
    ended = app.handle(commands.EndSession(), session_id)
    assert ended.connection_state == ConnectionState.ENDED
    assert ended.start_enabled
    late = app.handle(commands.ReportDisconnected(), session_id)
    assert late.connection_state == ConnectionState.ENDED
    assert types(app, session_id)[-2:] == ["SessionEnded", "SignalIgnored"]


def test_every_event_records_time_actor_and_cause(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = connected_session(app)
    clock.advance(7)
    app.handle(commands.ReportDisconnected(reason="ping timeout", actor=Actor.AGENT), session_id)
    disconnected, scheduled = session_history(app, session_id)[3:5]
    assert disconnected.occurred_at == clock.now()
    assert disconnected.actor == "agent"
    assert disconnected.cause["name"] == "disconnected"
    assert disconnected.cause["args"] == {"reason": "ping timeout"}
    assert disconnected.cause["read_version"] == 3
    # Both facts of one decision share the command that caused them.
    assert scheduled.cause == disconnected.cause


def test_custom_policy_is_kept_with_the_session(app: VoiceSessions, clock: VirtualClock) -> None:
    policy = BackoffPolicy(base_delay_ms=250, factor=3, max_attempts=2)
    start = commands.StartSession(room="room-1", participant="alice", policy=policy)
    session_id = app.handle(start).session_id
    app.handle(commands.Connect(), session_id)
    app.handle(commands.MarkConnected(), session_id)
    state = app.handle(commands.ReportDisconnected(), session_id)
    assert state.next_retry_at == clock.now() + timedelta(milliseconds=250)
    wait_for_retry(app, clock, session_id)
    second = app.handle(commands.FailAttempt(attempt=1, error="down"), session_id)
    assert second.next_retry_at == clock.now() + timedelta(milliseconds=750)
    assert second.status_text == "Reconnecting... (attempt 2 of 2)"
    wait_for_retry(app, clock, session_id)
    state = app.handle(commands.FailAttempt(attempt=2, error="down"), session_id)
    assert state.connection_state == ConnectionState.FAILED


def test_a_command_whose_save_fails_leaves_the_session_as_stored(
    app: VoiceSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = connected_session(app)
    before = app.status(session_id)

    def store_gone(*objs: object, **kwargs: object) -> None:
        raise OSError("the store went away")

    monkeypatch.setattr(app, "save", store_gone)
    with pytest.raises(OSError):
        app.handle(commands.ReportDisconnected(), session_id)
    monkeypatch.undo()
    assert app.status(session_id) == before
    assert app.session(session_id).pending_events == []
    assert app.handle(commands.ReportDisconnected(), session_id).connection_state == (
        ConnectionState.RECONNECTING)
