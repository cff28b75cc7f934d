"""Sessions with known races, written through the real application (shared by replay tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from clara_es.application import VoiceSessions
from clara_es.domain import Actor, Quality, VirtualClock, commands


def connected(app: VoiceSessions, room: str = "room-1", participant: str = "alice") -> UUID:
    session_id = app.handle(commands.StartSession(room=room, participant=participant)).session_id
    app.handle(commands.Connect(), session_id)
    app.handle(commands.MarkConnected(), session_id)
    return session_id


def poor(app: VoiceSessions, session_id: UUID, participant: str = "alice") -> None:
    """The participant's quality drops to poor and the drop is confirmed."""
    app.handle(commands.ChangeQuality(participant=participant, quality=Quality.POOR), session_id)
    app.handle(commands.ConfirmPoorQuality(participant=participant), session_id)


def due(app: VoiceSessions, clock: VirtualClock, session_id: UUID) -> int:
    status = app.status(session_id)
    assert status.next_retry_at is not None
    clock.advance_to(status.next_retry_at)
    return status.attempt


def lose_one_race(loser: VoiceSessions, winner_writes: Any) -> None:
    """The next save of `loser` finds that another writer appended after it read."""
    original = loser.save

    def save(*objs: object, **kwargs: Any) -> Any:
        loser.save = original  # type: ignore[method-assign]
        winner_writes()
        return original(*objs, **kwargs)

    loser.save = save  # type: ignore[method-assign]


@dataclass(frozen=True)
class RacySessions:
    duplicate_outage: UUID  # client and agent report one outage; the agent lost the append
    late_timer: UUID  # the timer for attempt 1 fires after attempt 2 was scheduled
    success_after_failure: UUID  # Reconnected arrives after Failed
    cleanup_vs_reconnect: UUID  # the session ends while reconnecting; the success comes late
    watchdog: UUID  # the client died mid-attempt; the system's deadline failed it
    quiet: UUID  # a blink that recovers: no race at all


def racy_sessions(
    app: VoiceSessions, other_writer: VoiceSessions, clock: VirtualClock
) -> RacySessions:
    dup = connected(app)
    client_saw_it = commands.ReportDisconnected(reason="client saw it", actor=Actor.CLIENT)
    lose_one_race(other_writer, lambda: app.handle(client_saw_it, dup))
    other_writer.handle(commands.ReportDisconnected(reason="agent saw it", actor=Actor.AGENT), dup)

    late = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), late)
    due(app, clock, late)
    app.handle(commands.FailAttempt(attempt=1, error="down"), late)
    app.handle(commands.StartAttempt(attempt=1, actor=Actor.SYSTEM), late)

    failed = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), failed)
    for attempt in range(1, 6):
        due(app, clock, failed)
        app.handle(commands.FailAttempt(attempt=attempt, error="down"), failed)
    clock.advance(1)
    app.handle(commands.ReportReconnected(), failed)

    ended = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), ended)
    app.handle(commands.EndSession(reason="user gave up"), ended)
    app.handle(commands.ReportReconnected(), ended)

    watched = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), watched)
    due(app, clock, watched)
    app.handle(commands.StartAttempt(attempt=1), watched)
    clock.advance(10)
    app.handle(commands.FailAttempt(attempt=1, error="timeout", actor=Actor.SYSTEM), watched)

    quiet = connected(app)
    app.handle(commands.ReportDisconnected(reason="network"), quiet)
    due(app, clock, quiet)
    app.handle(commands.StartAttempt(attempt=1), quiet)
    app.handle(commands.ReportReconnected(), quiet)
    return RacySessions(dup, late, failed, ended, watched, quiet)
