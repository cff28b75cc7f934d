"""The one schedule follower: from a session's UI state and the time, what the client does next."""

from __future__ import annotations

from datetime import datetime, timedelta

from clara_es.domain import ConnectionState, commands
from clara_es.domain.schedule import Start, Wait, follow, next_step, outcome

from .conftest import Dropped


def test_the_follower_waits_until_due_then_starts_and_reports_the_spec_schedule(
    dropped: Dropped,
) -> None:
    app, clock, sid, state = dropped.app, dropped.clock, dropped.session_id, dropped.state
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


def test_an_attempt_in_flight_calls_for_no_attempt(dropped: Dropped) -> None:
    dropped.clock.advance(1)
    in_flight = dropped.app.handle(commands.StartAttempt(attempt=1), dropped.session_id)
    assert next_step(in_flight, dropped.clock.now()) is None
    assert isinstance(outcome(1, "refused"), commands.FailAttempt)
    assert isinstance(outcome(1, None), commands.ReportReconnected)
