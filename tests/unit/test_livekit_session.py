"""The session commands the LiveKit edges use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clara_es.application import VoiceSessions, session_history
from clara_es.cli.agent import session_for
from clara_es.domain import ConnectionState, InvalidTransition, VirtualClock, commands
from tests.support.livekit_sdk import recorded
from tests.support.scenarios import connected


def test_the_room_resuming_is_only_recorded_from_connected(app: VoiceSessions) -> None:
    session_id = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    # our schedule runs: the room is not resuming
    state = app.handle(commands.StartResume(), session_id)
    assert state.status_text == "Reconnecting... (attempt 1 of 5)"
    assert recorded(app, session_id)[-1] == (
        "SignalIgnored", "the room started resuming while reconnecting"
    )


def test_a_resume_that_gives_up_counts_the_outage_from_its_start(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id = connected(app)
    app.handle(commands.StartResume.build(), session_id)
    clock.advance(4)
    state = app.handle(commands.ReportDisconnected(reason="SIGNAL_CLOSE"), session_id)
    assert state.status_text == "Reconnecting... (attempt 1 of 5)"
    assert state.next_retry_at == clock.now() + timedelta(seconds=1)
    clock.advance(1)
    app.handle(commands.StartAttempt(attempt=1), session_id)
    app.handle(commands.ReportReconnected(), session_id)
    assert recorded(app, session_id)[-1] == ("Reconnected", 1)
    assert session_history(app, session_id)[-1].details["outage_ms"] == 5000


def test_the_agents_connection_records_changes_only(app: VoiceSessions) -> None:
    session_id = connected(app)
    for connection in ("connected", "reconnecting", "reconnecting", "connected", "connected"):
        change = commands.ChangeAgentConnection.build(connection=connection, reason="room event")
        app.handle(change, session_id)
    assert recorded(app, session_id, since=3) == [
        ("AgentConnectionChanged", "reconnecting"),
        ("AgentConnectionChanged", "connected"),
    ]


def test_a_webhook_without_an_id_is_refused_and_appends_nothing(app: VoiceSessions) -> None:
    session_id = connected(app)
    with pytest.raises(InvalidTransition, match="needs an id"):
        app.handle(commands.WebhookRoomFinished(webhook_id=""), session_id)
    assert len(recorded(app, session_id)) == 3


def test_the_agent_watches_the_users_open_session_or_starts_one(app: VoiceSessions) -> None:
    first = session_for(app, "room-1", "alice")
    assert session_for(app, "room-1", "alice") == first
    assert app.status(first).connection_state == ConnectionState.IDLE
    assert session_for(app, "room-1", "bob") != first
    app.handle(commands.EndSession(), first)
    assert session_for(app, "room-1", "alice") != first
