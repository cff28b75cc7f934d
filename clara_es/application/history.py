"""One session's stored events, each with the state the session was in right after it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

from clara_es.application.records import HistoryEntry
from clara_es.domain import SessionNotFound, VoiceSession, ui_state

if TYPE_CHECKING:
    from clara_es.application.sessions import VoiceSessions


def replay(events: Iterable[Any]) -> Iterator[HistoryEntry]:
    """Apply stored events one by one, yielding each with the state after it."""
    session: VoiceSession | None = None
    for event in events:
        session = event.mutate(session)
        assert session is not None
        yield HistoryEntry.of(event, state=ui_state(session))


def session_history(app: VoiceSessions, session_id: UUID) -> list[HistoryEntry]:
    entries = list(replay(app.events_after(session_id)))
    if not entries:
        raise SessionNotFound(f"no session {session_id}")
    return entries
