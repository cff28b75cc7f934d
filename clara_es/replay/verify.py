"""Re-run stored sessions through today's domain code and report where it now decides otherwise.

Each stored event records the signal that caused it (name, arguments, actor, time, the version
it read). Events with the same cause are one decision. The verifier starts an empty session and
sends it the same signals in the same order, on a virtual clock set to each signal's recorded
time, and compares the events today's code appends with the stored ones, event by event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import groupby
from typing import Any
from uuid import UUID

from pydantic import BaseModel, SerializationInfo, field_serializer

from clara_es.application import EventRecord, VoiceSessions, dispatch
from clara_es.application.records import event_type, record_fields
from clara_es.domain import Actor, Signal, VirtualClock, VoiceSession
from clara_es.domain.signal import signal_of
from clara_es.replay.races import session_ids


class Difference(BaseModel):
    """The first event where today's code and the stored history part ways."""

    session_id: UUID
    version: int
    signal: str
    stored: EventRecord | None
    today: EventRecord | None
    note: str

    @field_serializer("stored", "today")
    def _without_session(
        self, record: EventRecord | None, info: SerializationInfo
    ) -> dict[str, Any] | None:
        # The difference names its session once, at the top.
        if record is None:
            return None
        return record.model_dump(mode=info.mode, exclude={"session_id"})


def _decisions(events: Iterable[Any]) -> Iterator[tuple[Any, list[Any]]]:
    """Stored events grouped by the decision that appended them, with its first event."""
    def key(e: Any) -> tuple[Any, Any]:
        return (e.cause.get("id"), e.cause.get("read_version"))

    for _, group in groupby(events, key=key):
        stored = list(group)
        yield stored[0], stored


def _signal(event: Any, clock: VirtualClock) -> Signal:
    cause = event.cause
    if cause.get("id") is None:
        raise dispatch.UnknownSignal("stored before signals were recorded: nothing to re-run")
    return signal_of(cause, Actor(event.actor), clock.advance_to(event.timestamp))


def _difference(
    session_id: UUID, first: Any, note: str, version: int, today: Any = None, was: Any = None
) -> Difference:
    return Difference(
        session_id=session_id, version=version, signal=str(first.cause.get("name")),
        stored=EventRecord.of(was) if was is not None else None,
        today=EventRecord.of(today) if today is not None else None, note=note,
    )


def verify_session(app: VoiceSessions, session_id: UUID) -> Difference | None:
    """None if today's code appends exactly the stored events for the stored signals."""
    clock = VirtualClock(start=datetime.min.replace(tzinfo=UTC))
    session: VoiceSession | None = None
    for first, stored in _decisions(app.events_after(session_id)):
        try:
            signal = _signal(first, clock)
            if session is None:
                session = dispatch.start(signal, session_id)
            else:
                dispatch.decide(session, signal)
        except Exception as exc:  # today's code refusing or crashing is the finding
            note = f"today's code raises {type(exc).__name__}: {exc}"
            return _difference(session_id, first, note, first.originator_version, was=first)
        appended = list(session.collect_events())
        for was, now in zip(stored, appended, strict=False):
            if record_fields(was) != record_fields(now):
                note = f"stored {event_type(was)}, today {event_type(now)}"
                return _difference(session_id, first, note, was.originator_version, now, was)
        if len(appended) > len(stored):
            extra = appended[len(stored)]
            note = f"today's code also appends {event_type(extra)}"
            return _difference(session_id, first, note, extra.originator_version, today=extra)
        if len(stored) > len(appended):
            missing = stored[len(appended)]
            note = f"today's code no longer appends {event_type(missing)}"
            return _difference(session_id, first, note, missing.originator_version, was=missing)
    return None


def verify_sessions(
    app: VoiceSessions,
    ids: Iterable[UUID] | None = None,
    progress: Callable[[UUID], None] | None = None,
) -> tuple[int, list[Difference]]:
    """Verify the given sessions (all stored ones by default): (sessions checked, differences)."""
    checked, differences = 0, []
    for session_id in ids if ids is not None else session_ids(app):
        checked += 1
        found = verify_session(app, session_id)
        if found is not None:
            differences.append(found)
        if progress is not None:
            progress(session_id)
    return checked, differences
