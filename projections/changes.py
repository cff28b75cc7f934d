"""From stored notifications to what the views receive: each event decoded once.

A stored event whose class this code does not know still reaches the views (history records
it generically), as an UnknownEvent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.utils import TopicError

from clara_es.application.records import UnknownEvent
from projections.view import Logged

# Sessions whose ids a reader keeps (each of its sessions' events shares one UUID object).
SESSION_IDS_KEPT = 20_000


def share_session_ids(app: Application[UUID]) -> None:
    """The app's SQLite recorder makes one UUID per session instead of one per event read
    (a rebuild reads tens of events per session; each UUID parsed from text is a
    microsecond). UUIDs are immutable, so events may share them. PostgreSQL's driver makes
    them itself: nothing to do there."""
    recorder = app.recorder
    convert = getattr(recorder, "convert_originator_id", None)
    if convert is None:
        return
    ids: dict[str, Any] = {}

    def shared(originator_id: str) -> Any:
        found = ids.get(originator_id)
        if found is None:
            if len(ids) >= SESSION_IDS_KEPT:
                ids.clear()
            found = ids[originator_id] = convert(originator_id)
        return found

    recorder.convert_originator_id = shared  # type: ignore[attr-defined]


def decode(app: Application[UUID], notifications: Sequence[Notification]) -> list[Logged]:
    to_domain_event = app.mapper.to_domain_event
    batch = []
    for notification in notifications:
        try:
            event: Any = to_domain_event(notification)
        except TopicError:
            event = _unknown(app, notification)
        batch.append(Logged(notification.id, event, str(notification.originator_id)))
    return batch


def _unknown(app: Application[UUID], notification: Notification) -> UnknownEvent:
    state: dict[str, Any] = app.mapper.transcoder.decode(notification.state)
    return UnknownEvent(
        UUID(str(notification.originator_id)), notification.originator_version,
        notification.topic, state,
    )
