"""What the agent reports and what the service decides about its restarts (in-memory store)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from clara_es.application import VoiceSessions
from clara_es.domain import InvalidTransition, Quality, VirtualClock, commands
from clara_es.replay.verify import verify_session
from tests.support.livekit_sdk import recorded
from tests.support.scenarios import connected

WINDOW = timedelta(seconds=1)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def app(clock: VirtualClock) -> VoiceSessions:
    return VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


def quality(app: VoiceSessions, session_id: UUID, q: Quality) -> None:
    app.handle(commands.ChangeQuality(participant="alice", quality=q), session_id)


def requested(app: VoiceSessions, session_id: UUID) -> str:
    quality(app, session_id, Quality.POOR)
    app.handle(commands.ConfirmPoorQuality(participant="alice"), session_id)
    _, events = app.handle_with_events(commands.RequestPipelineRestart(cap=3), session_id)
    return str(events[-1].request_id)  # type: ignore[attr-defined]


def test_one_agent_claims_a_restart_and_a_second_is_refused(app: VoiceSessions) -> None:
    session_id = connected(app)
    request_id = requested(app, session_id)
    app.handle(commands.ClaimPipelineRestart(request_id=request_id, agent="a"), session_id)
    version = app.session(session_id).version
    # a repeat
    app.handle(commands.ClaimPipelineRestart(request_id=request_id, agent="a"), session_id)
    assert app.session(session_id).version == version
    with pytest.raises(InvalidTransition, match="already claimed by a"):
        app.handle(commands.ClaimPipelineRestart(request_id=request_id, agent="b"), session_id)
    app.handle(commands.FinishPipelineRestart(request_id=request_id), session_id)
    with pytest.raises(InvalidTransition, match="not pending"):
        app.handle(commands.ClaimPipelineRestart(request_id=request_id, agent="b"), session_id)
    assert [t for t, _ in recorded(app, session_id)][-3:] == [
        "PipelineRestartRequested", "PipelineRestartClaimed", "PipelineRestarted",
    ]
    assert verify_session(app, session_id) is None


def test_no_agent_answering_fails_the_restart_and_a_late_report_is_ignored(
    app: VoiceSessions,
) -> None:
    session_id = connected(app)
    request_id = requested(app, session_id)
    app.handle(commands.TimeOutPipelineRestart(request_id=request_id), session_id)
    # the agent, too late
    app.handle(commands.FinishPipelineRestart(request_id=request_id), session_id)
    history = recorded(app, session_id)
    assert [t for t, _ in history][-2:] == ["PipelineRestartFailed", "SignalIgnored"]
    failed = list(app.repository.event_store.get(session_id))[-2]
    assert failed.error == "no agent answered"  # type: ignore[attr-defined]
    assert failed.actor == "system"
    # The cap goes on: the next request is restart 2.
    _, events = app.handle_with_events(commands.RequestPipelineRestart(cap=3), session_id)
    assert events[-1].restart == 2  # type: ignore[attr-defined]
    assert verify_session(app, session_id) is None


def test_a_restart_pending_when_the_session_ends_gets_no_outcome(app: VoiceSessions) -> None:
    """Failed and SessionEnded are final: the restart's deadline (fired before the process
    manager applied the end) and the agent's late report are ignored, a claim refused."""
    session_id = connected(app)
    request_id = requested(app, session_id)
    app.handle(commands.EndSession(reason="user"), session_id)
    app.handle(commands.TimeOutPipelineRestart(request_id=request_id), session_id)
    app.handle(commands.FinishPipelineRestart(request_id=request_id, error="late"), session_id)
    with pytest.raises(InvalidTransition, match="the session is ended"):
        app.handle(commands.ClaimPipelineRestart(request_id=request_id, agent="a"), session_id)
    history = recorded(app, session_id)
    after_end = [t for t, _ in history][[t for t, _ in history].index("SessionEnded") + 1:]
    assert "PipelineRestartFailed" not in after_end
    assert after_end.count("SignalIgnored") == 2
    assert verify_session(app, session_id) is None


def test_the_poor_window_is_decided_per_spell(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = connected(app)
    quality(app, session_id, Quality.POOR)
    first_spell = app.session(session_id).poor_since
    assert app.session(session_id).poor_window_ends_at(WINDOW) == clock.now() + WINDOW
    clock.advance(timedelta(seconds=0.5))
    quality(app, session_id, Quality.LOST)  # the same spell
    assert app.session(session_id).poor_since == first_spell
    quality(app, session_id, Quality.GOOD)
    assert app.session(session_id).poor_window_ends_at(WINDOW) is None
    clock.advance(timedelta(seconds=0.4))
    quality(app, session_id, Quality.POOR)  # a new spell
    clock.advance(timedelta(seconds=0.1))
    # The timer of the first spell fires: the new spell is younger than the window.
    app.handle(commands.ConfirmPoorQuality(participant="alice", since=first_spell), session_id)
    assert recorded(app, session_id)[-1][0] == "SignalIgnored"
    second_spell = app.session(session_id).poor_since
    app.handle(commands.ConfirmPoorQuality(participant="alice", since=second_spell), session_id)
    assert recorded(app, session_id)[-1] == ("QualityPoor", "poor")
    assert app.session(session_id).poor_window_ends_at(WINDOW) is None
    assert verify_session(app, session_id) is None


def test_agent_errors_and_close_are_facts(app: VoiceSessions) -> None:
    session_id = connected(app)
    app.handle(commands.ReportAgentError(source="tts", error="socket closed", recoverable=True),
               session_id)
    app.handle(commands.ReportAgentClosed(reason="participant_disconnected"), session_id)
    events = list(app.repository.event_store.get(session_id))[-2:]
    assert [(type(e).__name__, e.actor) for e in events] == [
        ("AgentErrorReported", "agent"), ("AgentSessionClosed", "agent"),
    ]
    assert app.status(session_id).connection_state == "connected"  # facts, not transitions
    assert verify_session(app, session_id) is None
