"""One session's stored events, each with the state the session was in right after it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from clara_es.domain import SessionNotFound, UIState, VoiceSession, ui_state

ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "cause"}
)


class HistoryEntry(BaseModel):
    session_id: UUID
    version: int
    type: str
    occurred_at: datetime
    actor: str
    cause: dict[str, Any]
    details: dict[str, Any]
    state: UIState

    @property
    def recorded_at(self) -> datetime:
        """When the service recorded it: later than occurred_at for a fact reported late (the
        cause keeps it only where the two differ, so older events read as before)."""
        at = self.cause.get("recorded_at")
        return datetime.fromisoformat(at) if at else self.occurred_at

    def when(self) -> str:
        """occurred_at, and how much later it was recorded where that differs."""
        text = self.occurred_at.isoformat(timespec="milliseconds")
        late = (self.recorded_at - self.occurred_at).total_seconds()
        return f"{text} (recorded {late:+.3f} s)" if late else text


def event_type(event: object) -> str:
    return type(event).__name__


def event_details(event: object) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if k not in ENVELOPE}


def replay(events: Iterable[Any]) -> Iterator[HistoryEntry]:
    """Apply stored events one by one, yielding each with the state after it."""
    session: VoiceSession | None = None
    for event in events:
        session = event.mutate(session)
        assert session is not None
        yield HistoryEntry(
            session_id=event.originator_id,
            version=event.originator_version,
            type=event_type(event),
            occurred_at=event.timestamp,
            actor=getattr(event, "actor", ""),
            cause=getattr(event, "cause", {}),
            details=event_details(event),
            state=ui_state(session),
        )


def session_history(app: Any, session_id: UUID) -> list[HistoryEntry]:
    entries = list(replay(app.repository.event_store.get(session_id)))
    if not entries:
        raise SessionNotFound(f"no session {session_id}")
    return entries
