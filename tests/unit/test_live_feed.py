"""A live feed sends each version of its session once, in order, whichever way the new events
reach it: handed over with the append, handed over twice (this process's append heard again
through LISTEN), or out of order (then it reads the missing versions from the store)."""

from __future__ import annotations

from clara_es.application import VoiceSessions
from clara_es.domain import commands
from clara_es.http.sse import Follower
from tests.support.scenarios import connected


def test_delivered_events_are_sent_once_in_order_and_a_gap_is_read_from_the_store(
    app: VoiceSessions,
) -> None:
    session_id = connected(app)
    follower = Follower.after(app, session_id, app.session(session_id).version)
    start = follower.version
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    app.handle(commands.StartAttempt(attempt=1), session_id)
    new = app.events_after(session_id, start)
    assert len(new) >= 3

    states, gap = follower.take(new[:1])
    assert ([s.version for s in states], gap) == ([start + 1], False)

    states, gap = follower.take(new[:1])  # heard again: nothing sent twice
    assert (states, gap) == ([], False)

    states, gap = follower.take(new[2:])  # one version missing before these
    assert (states, gap) == ([], True)
    read = follower.newer()
    assert [s.version for s in read] == [e.originator_version for e in new[1:]]
    assert read[-1].connection_state == app.status(session_id).connection_state
