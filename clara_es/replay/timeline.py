"""Time travel through one session: every step with its state and cause, and the state as of
any version or time (the aggregate rebuilt to that version)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from clara_es.application import HistoryEntry, VoiceSessions, session_history
from clara_es.domain import InvalidTransition, UIState, ui_state
from clara_es.replay.races import Race, races_of


class ReplayStep(BaseModel):
    entry: HistoryEntry
    races: list[Race]


def replay_steps(app: VoiceSessions, session_id: UUID) -> list[ReplayStep]:
    entries = session_history(app, session_id)
    by_version: dict[int, list[Race]] = {}
    for race in races_of(entries):
        by_version.setdefault(race.version, []).append(race)
    return [ReplayStep(entry=e, races=by_version.get(e.version, [])) for e in entries]


def version_at(entries: list[HistoryEntry], at: int | datetime) -> int:
    """The version a point names: a version as given, or the last event at or before a time."""
    last = entries[-1].version
    if isinstance(at, int):
        if not 1 <= at <= last:
            raise InvalidTransition(f"version {at} is not in this session (1 to {last})")
        return at
    before = [e.version for e in entries if e.occurred_at <= at]
    if not before:
        raise InvalidTransition(
            f"the session started at {entries[0].occurred_at.isoformat()}, after {at.isoformat()}"
        )
    return before[-1]


def state_at(app: VoiceSessions, session_id: UUID, at: int | datetime) -> UIState:
    """The UI state of the aggregate rebuilt from its stream up to `at`."""
    version = version_at(session_history(app, session_id), at)
    return ui_state(app.session(session_id, version=version))
