"""Causality in every event, and a session as of a version or a time."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from clara_es.application import VoiceSessions, dispatch, session_history
from clara_es.domain import Actor, ConnectionState, Signal, VirtualClock, commands, ui_state
from clara_es.replay.timeline import state_at
from tests.support.scenarios import connected

# ---- causality -------------------------------------------------------------------------------


def test_every_event_names_the_signal_and_the_version_it_read(app: VoiceSessions) -> None:
    session_id = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    entries = session_history(app, session_id)
    disconnected, scheduled = entries[-2:]
    assert disconnected.cause["name"] == scheduled.cause["name"] == "disconnected"
    assert disconnected.cause["args"] == {"reason": "network"}
    assert disconnected.cause["id"] == scheduled.cause["id"]  # one decision, two facts
    assert disconnected.cause["read_version"] == 3
    assert "lost_reads" not in disconnected.cause


def test_a_timer_that_fired_is_recorded_as_the_system_with_the_timer_id(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    """The watchdog's timer fails an attempt: its command names the timer and the system."""
    session_id = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    clock.advance(1)
    app.handle(commands.StartAttempt(attempt=1), session_id)
    timer = Signal("attempt_timed_out", Actor.SYSTEM, clock.advance(10), {"attempt": 1},
                   id="timer-1234", read_version=6)
    session = app.session(session_id)
    dispatch.decide(session, timer)
    app.save(session)
    failed = session_history(app, session_id)[-2]
    assert failed.type == "ReconnectAttemptFailed" and failed.details["error"] == "timeout"
    assert failed.actor == "system"
    assert failed.cause == {"id": "timer-1234", "name": "attempt_timed_out",
                            "args": {"attempt": 1}, "read_version": 6}


def _strip_causality(app: VoiceSessions, event: Any) -> Any:
    stored = app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    del state["actor"], state["cause"]
    return type(stored)(stored.originator_id, stored.originator_version, stored.topic,
                        json.dumps(state).encode())


def test_events_stored_without_actor_or_cause_still_read_back(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    """A stream written before causality was recorded: replay, status and new commands work."""
    started = app.handle(commands.StartSession(room="room-old", participant="bob"))
    session = app.session(started.session_id)
    session.connect(Signal("connect", Actor.CLIENT, clock.now()))
    old_shaped = [_strip_causality(app, e) for e in session.collect_events()]
    app.recorder.insert_events(old_shaped)

    entries = session_history(app, started.session_id)
    assert [e.type for e in entries] == ["SessionStarted", "Connecting"]
    assert entries[-1].actor == "unknown" and entries[-1].cause["name"] == "unknown"
    assert entries[-1].state.connection_state == ConnectionState.CONNECTING
    # the old stream takes new commands
    after = app.handle(commands.MarkConnected(), started.session_id)
    assert after.connection_state == ConnectionState.CONNECTED
    assert session_history(app, started.session_id)[-1].cause["read_version"] == 2


# ---- time travel ---------------------------------------------------------------------------------


def test_state_at_a_version_and_at_a_time_is_the_rebuilt_aggregate(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id = connected(app)
    clock.advance(3)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    entries = session_history(app, session_id)
    for entry in entries:
        assert state_at(app, session_id, entry.version) == ui_state(
            app.session(session_id, version=entry.version)
        )
    just_before = entries[-1].occurred_at - timedelta(milliseconds=1)
    assert state_at(app, session_id, just_before).version == 3
    assert state_at(app, session_id, just_before).connection_state == ConnectionState.CONNECTED
