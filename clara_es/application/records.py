"""One stored event with its metadata, as every reader shows it: `EventRecord`, and its builder.

`history`, `replay`, `races`, `replay --verify`, the history view and the HTTP history all show
the same record (session, version, type, time, actor, cause, details); a reader that shows more
(the state after it, the view's room and notification id) extends it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self
from uuid import UUID

from pydantic import BaseModel, PrivateAttr

from clara_es.domain import UIState

ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "cause"}
)


class UnknownEvent:
    """A stored event whose class this code does not know: its envelope and its fields.

    It still reaches the readers (the history view records it); it changes no session.
    """

    def __init__(
        self, originator_id: UUID, originator_version: int, topic: str, state: dict[str, Any]
    ) -> None:
        self.type_name = topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.timestamp: datetime = state.pop("timestamp")
        self.actor = str(state.pop("actor", ""))
        self.cause: dict[str, Any] = state.pop("cause", {})
        self.fields = state


def event_type(event: object) -> str:
    """The event's type as readers show it: its class name."""
    if isinstance(event, UnknownEvent):
        return event.type_name
    return type(event).__name__


def event_details(event: object) -> dict[str, Any]:
    """The event's own fields (everything but the envelope)."""
    if isinstance(event, UnknownEvent):
        return dict(event.fields)
    details = dict(vars(event))
    for key in ENVELOPE:  # six pops: half the cost of a filtered copy of every field
        details.pop(key, None)
    return details


def record_fields(event: Any) -> dict[str, Any]:
    """The one builder: a stored event's record, as plain values."""
    return {
        "session_id": event.originator_id,
        "version": event.originator_version,
        "type": event_type(event),
        "occurred_at": event.timestamp,
        "actor": getattr(event, "actor", ""),
        "cause": getattr(event, "cause", {}),
        "details": event_details(event),
    }


class EventRecord(BaseModel):
    """One stored event of a session with its metadata."""

    session_id: UUID
    version: int
    type: str
    occurred_at: datetime
    actor: str
    cause: dict[str, Any]
    details: dict[str, Any]

    _event: Any = PrivateAttr(default=None)

    @classmethod
    def of(cls, event: Any, **extra: Any) -> Self:
        """The record of a decoded event (`extra`: the fields a subclass adds)."""
        record = cls(**record_fields(event), **extra)
        record._event = event
        return record

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

    @property
    def event(self) -> Any:
        """The decoded event this record was built from (None when read from a view)."""
        return self._event


class HistoryEntry(EventRecord):
    """A record with the UI state the session was in right after it."""

    state: UIState
