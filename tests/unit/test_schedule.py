"""The one schedule follower: from a session's UI state and the time, what the client does next."""

from __future__ import annotations

from datetime import datetime, timedelta

from clara_es.application import VoiceSessions
from clara_es.domain import ConnectionState, VirtualClock
from clara_es.domain.commands import FailAttempt, ReportReconnected
from clara_es.domain.schedule import Start, Wait, follow, next_step, outcome


def _app(clock: VirtualClock) -> VoiceSessions:
    return VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


def test_the_follower_waits_until_due_then_starts_and_reports_the_spec_schedule() -> None:
    clock = VirtualClock()
    app = _app(clock)
    sid = app.start("room", "alice").session_id
    app.connect(sid)
    app.connected(sid)
    state = app.disconnected(sid, "wifi off")
    step = next_step(state, clock.now())
    assert step == Wait(1, clock.now() + timedelta(seconds=1))
    assert next_step(state, clock.now() + timedelta(seconds=1)) == Start(1, step.until)

    starts: list[datetime] = []

    def connect(_attempt: int) -> str | None:
        starts.append(clock.now())
        return "network unreachable"

    drop = clock.now()
    final = follow(lambda c: app.handle_with_events(c, sid), state, clock.advance_to, connect)
    assert final.connection_state == ConnectionState.FAILED
    assert [round((t - drop).total_seconds()) for t in starts] == [1, 3, 7, 15, 31]
    assert next_step(final, clock.now()) is None


def test_an_attempt_in_flight_or_the_sdk_resuming_calls_for_no_attempt() -> None:
    clock = VirtualClock()
    app = _app(clock)
    sid = app.start("room", "alice").session_id
    app.connect(sid)
    app.connected(sid)
    state = app.disconnected(sid, "wifi off")
    clock.advance(1)
    in_flight = app.attempt_started(sid, 1)
    assert next_step(in_flight, clock.now()) is None
    assert isinstance(outcome(1, "refused"), FailAttempt)
    assert isinstance(outcome(1, None), ReportReconnected)
    assert state.attempt == 1


