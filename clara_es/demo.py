"""The spec's verification checklist as a scripted scenario (seed section 9).

A scripted client drives two sessions through the real application and store:
  A. connected, then a 5-second network drop: Reconnecting..., then Connected again;
  B. connected, then a 40-second outage: attempts after 1, 2, 4, 8, 16 s all fail: Failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from clara_es.application import HistoryEntry, VoiceSessions, session_history
from clara_es.domain import Clock, ConnectionState

SETTLE = timedelta(seconds=3)


@dataclass(frozen=True)
class DemoSession:
    label: str
    description: str
    session_id: UUID
    final_state: ConnectionState


@dataclass(frozen=True)
class DemoRun:
    started_at: datetime
    sessions: list[DemoSession]
    timeline: list[tuple[DemoSession, HistoryEntry]]


def _drop(app: VoiceSessions, clock: Clock, session_id: UUID, outage: timedelta) -> None:
    """The network goes away for `outage`; the client follows the session's schedule."""
    back_at = clock.now() + outage
    state = app.disconnected(session_id, "network unreachable")
    while state.connection_state == ConnectionState.RECONNECTING:
        assert state.next_retry_at is not None
        clock.sleep_until(state.next_retry_at)
        app.attempt_started(session_id, state.attempt)
        if clock.now() >= back_at:
            state = app.reconnected(session_id)
        else:
            state = app.attempt_failed(session_id, state.attempt, "network unreachable")


def _session(app: VoiceSessions, clock: Clock, label: str, outage_s: int) -> DemoSession:
    session_id = app.start(f"demo-room-{label.lower()}", f"demo-user-{label.lower()}").session_id
    app.connect(session_id)
    app.connected(session_id)
    clock.sleep_until(clock.now() + SETTLE)
    _drop(app, clock, session_id, timedelta(seconds=outage_s))
    return DemoSession(
        label=label,
        description=f"{outage_s}-second network drop",
        session_id=session_id,
        final_state=app.status(session_id).connection_state,
    )


def run_demo(app: VoiceSessions) -> DemoRun:
    clock = app.clock
    started_at = clock.now()
    sessions = [_session(app, clock, "A", 5)]
    clock.sleep_until(clock.now() + SETTLE)
    sessions.append(_session(app, clock, "B", 40))
    timeline = sorted(
        ((s, e) for s in sessions for e in session_history(app, s.session_id)),
        key=lambda pair: (pair[1].occurred_at, pair[0].label, pair[1].version),
    )
    return DemoRun(started_at=started_at, sessions=sessions, timeline=timeline)
