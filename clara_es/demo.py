"""The spec's verification checklist as a scripted scenario (seed section 9).

A scripted client drives two sessions through the real application and store:
  A. connected, then a 5-second network drop: Reconnecting..., then Connected again;
  B. connected, then a 40-second outage: attempts after 1, 2, 4, 8, 16 s all fail: Failed.
The server's part runs beside it on the same clock (the process manager and its worker):
  A. the agent sees quality turn poor and restarts the audio pipeline (the first restart
     fails, the second, after 1 s of backoff, works); quality good again ends the episode;
  B. quality is lost; after Failed and the grace time the session is cleaned up (or the
     stream says why not: no LiveKit configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from clara_es.application import HistoryEntry, VoiceSessions, session_history
from clara_es.domain import Clock, ConnectionState
from clara_es.domain.commands import (
    ChangeQuality,
    Connect,
    MarkConnected,
    ReportDisconnected,
    StartSession,
)
from clara_es.domain.schedule import follow
from clara_es.process import Worker

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


def _drop(
    app: VoiceSessions, server: Worker, session_id: UUID, outage: timedelta, quality: str
) -> None:
    """The network degrades, then goes away for `outage`; the client follows the schedule.

    The agent sees the quality turn bad first; the process manager confirms it once it held
    for the window.
    """
    clock = app.clock
    participant = app.session(session_id).participant
    app.handle(ChangeQuality(participant=participant, quality=quality), session_id)
    server.run_until(clock.now() + timedelta(seconds=server.settings.poor_window_s))
    back_at = clock.now() + outage
    state = app.handle(ReportDisconnected(reason="network unreachable"), session_id)
    state = follow(
        lambda command: app.handle_with_events(command, session_id), state, server.run_until,
        lambda _attempt: None if clock.now() >= back_at else "network unreachable",
    )
    if state.connection_state == ConnectionState.CONNECTED:
        app.handle(ChangeQuality(participant=participant, quality="good"), session_id)
    server.run_until(clock.now())


def _session(
    app: VoiceSessions, server: Worker, label: str, outage_s: int, quality: str
) -> DemoSession:
    clock = app.clock
    session_id = app.handle(StartSession(
        room=f"demo-room-{label.lower()}", participant=f"demo-user-{label.lower()}"
    )).session_id
    app.handle(Connect(), session_id)
    app.handle(MarkConnected(), session_id)
    app.handle(
        ChangeQuality(participant=f"demo-user-{label.lower()}", quality="excellent"), session_id
    )
    server.run_until(clock.now() + SETTLE)
    _drop(app, server, session_id, timedelta(seconds=outage_s), quality)
    return DemoSession(
        label=label,
        description=f"{outage_s}-second network drop",
        session_id=session_id,
        final_state=app.status(session_id).connection_state,
    )


def run_demo(app: VoiceSessions, server: Worker) -> DemoRun:
    """`server` is the process manager's worker on `app`, on the same clock."""
    clock: Clock = app.clock
    started_at = clock.now()
    sessions = [_session(app, server, "A", 5, "poor")]
    server.run_until(clock.now() + SETTLE)
    sessions.append(_session(app, server, "B", 40, "lost"))
    server.run_until(clock.now() + timedelta(seconds=server.settings.cleanup_grace_s) + SETTLE)
    timeline = sorted(
        ((s, e) for s in sessions for e in session_history(app, s.session_id)),
        key=lambda pair: (pair[1].occurred_at, pair[0].label, pair[1].version),
    )
    return DemoRun(started_at=started_at, sessions=sessions, timeline=timeline)
