"""An attempt started before its due time is recorded as reported, and flagged."""

from __future__ import annotations

from clara_es.application import session_history
from clara_es.domain import ConnectionState, commands
from clara_es.replay.races import RaceKind, races_of
from clara_es.replay.verify import verify_session

from .conftest import Dropped


def test_an_eager_client_is_listed_by_races_and_still_verifies(dropped: Dropped) -> None:
    app, sid = dropped.app, dropped.session_id
    dropped.clock.advance(0.2)  # attempt 1 is due after 1 s
    state = app.handle(commands.StartAttempt(attempt=1), sid)
    assert state.connection_state == ConnectionState.RECONNECTING
    assert state.next_retry_at is None  # recorded: the attempt is in flight

    races = races_of(session_history(app, sid))
    assert [r.kind for r in races] == [RaceKind.EARLY_ATTEMPT]
    assert "0.800 s before its due time" in races[0].explanation
    assert verify_session(app, sid) is None


def test_an_attempt_on_time_is_no_race(dropped: Dropped) -> None:
    dropped.clock.advance(1)
    dropped.app.handle(commands.StartAttempt(attempt=1), dropped.session_id)
    assert races_of(session_history(dropped.app, dropped.session_id)) == []
