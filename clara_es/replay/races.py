"""The races of DESIGN.md section 3, recognised in a stored history: which, where, how resolved.

One classifier serves both `clara-es replay` (marks on the race-relevant steps) and
`clara-es races` (the sessions whose histories contain them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel

from clara_es.application import HistoryEntry, VoiceSessions, session_history
from clara_es.domain import ConnectionState
from clara_es.domain.events import (
    CleanupRequested,
    ReconnectAttemptFailed,
    SessionEnded,
    SignalIgnored,
)
from clara_es.domain.schedule import early_by

OUTAGE_SIGNALS = frozenset({"disconnected", "participant_left", "webhook participant_left"})
# attempt_timed_out: the process manager's watchdog timer (issue 5)
ATTEMPT_SIGNALS = frozenset({"attempt_started", "attempt_failed", "attempt_timed_out"})
SUCCESS_SIGNALS = frozenset({"reconnected", "participant_joined", "webhook participant_joined"})
CLEANUP_EVENTS = (SessionEnded, CleanupRequested)


class RaceKind(StrEnum):
    DUPLICATE_OUTAGE = "second disconnect while reconnecting"
    LATE_TIMER = "late timer"
    SUCCESS_AFTER_FAILURE = "reconnected after Failed"
    CLEANUP_VS_RECONNECT = "cleanup raced a reconnect"
    WATCHDOG = "client died mid-reconnect"
    CONCURRENT_WRITERS = "retried after a concurrency conflict"
    EARLY_ATTEMPT = "attempt started before its due time"


class Race(BaseModel):
    kind: RaceKind
    session_id: UUID
    version: int
    occurred_at: datetime
    explanation: str
    resolution: str


def races_of(entries: Sequence[HistoryEntry]) -> list[Race]:
    """Every race-relevant step of one session's history, oldest first."""
    found: list[Race] = []
    for previous, entry in zip([None, *entries[:-1]], entries, strict=True):
        found.extend(_classify(previous, entry))
    return found


def _classify(previous: HistoryEntry | None, entry: HistoryEntry) -> Iterator[Race]:
    before = previous.state.connection_state if previous else ConnectionState.IDLE
    cause = entry.cause
    signal = str(entry.details.get("signal", cause.get("name", "")))
    reason = str(entry.details.get("reason", ""))

    def race(kind: RaceKind, explanation: str, resolution: str) -> Race:
        return Race(
            kind=kind, session_id=entry.session_id, version=entry.version,
            occurred_at=entry.occurred_at, explanation=explanation, resolution=resolution,
        )

    due_at = previous.state.next_retry_at if previous else None
    early = early_by(due_at, entry.occurred_at) if entry.type == "ReconnectAttempted" else None
    if early is not None:
        yield race(
            RaceKind.EARLY_ATTEMPT,
            f"{entry.actor} started attempt {entry.details.get('attempt')} "
            f"{early.total_seconds():.3f} s before its due time ({due_at:%H:%M:%S.%f})",
            "recorded as reported: the reporter did not follow the schedule",
        )
    lost = cause.get("lost_reads") or []
    if lost and _first_of_decision(previous, entry):
        yield race(
            RaceKind.CONCURRENT_WRITERS,
            f"{entry.actor}'s {cause.get('name')} read v{lost[0]}, another writer appended first",
            f"re-read v{cause.get('read_version')} and decided again: {entry.type}",
        )
    event = entry.event
    if isinstance(event, SignalIgnored):
        if signal in OUTAGE_SIGNALS and before == ConnectionState.RECONNECTING:
            yield race(
                RaceKind.DUPLICATE_OUTAGE, f"{entry.actor} reported {signal}: {reason}",
                "the second report is recorded as SignalIgnored, nothing is scheduled twice",
            )
        elif signal in ATTEMPT_SIGNALS:
            yield race(
                RaceKind.LATE_TIMER, f"{signal}: {reason}",
                "a no-op: no attempt started or failed, recorded as SignalIgnored",
            )
        elif signal in SUCCESS_SIGNALS and before == ConnectionState.FAILED:
            yield race(
                RaceKind.SUCCESS_AFTER_FAILURE, f"{entry.actor} reported {signal} after Failed",
                "the session stays failed; the late success is recorded",
            )
        elif before == ConnectionState.ENDED and signal in SUCCESS_SIGNALS | OUTAGE_SIGNALS:
            yield race(
                RaceKind.CLEANUP_VS_RECONNECT, f"{signal} arrived after the session ended",
                "the end was appended first; the reconnect is ignored",
            )
    elif isinstance(event, CLEANUP_EVENTS) and before == ConnectionState.RECONNECTING:
        yield race(
            RaceKind.CLEANUP_VS_RECONNECT,
            f"{entry.type} while reconnecting",
            "appended first, so it wins: later attempts and successes are ignored",
        )
    elif isinstance(event, ReconnectAttemptFailed) and (
        entry.details.get("error") == "timeout" or entry.actor == "system"
    ):
        yield race(
            RaceKind.WATCHDOG,
            f"attempt {entry.details.get('attempt')} had no outcome by its deadline",
            "the watchdog failed it, so the session went on instead of reconnecting forever",
        )


def _first_of_decision(previous: HistoryEntry | None, entry: HistoryEntry) -> bool:
    return previous is None or previous.cause.get("id") != entry.cause.get("id")


def session_ids(app: VoiceSessions) -> Iterator[UUID]:
    """Every stored session, in the order they started; works without the views."""
    return app.started_sessions()


def find_races(
    app: VoiceSessions,
    ids: Iterable[UUID] | None = None,
    since: datetime | None = None,
    progress: Callable[[UUID], None] | None = None,
) -> list[Race]:
    """The races in the given sessions' histories (all stored sessions by default)."""
    found = []
    for sid in ids if ids is not None else session_ids(app):
        races = races_of(session_history(app, sid))
        found.extend(r for r in races if since is None or r.occurred_at >= since)
        if progress is not None:
            progress(sid)
    return found
