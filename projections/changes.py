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


def decode(app: Application[UUID], notifications: Sequence[Notification]) -> list[Logged]:
    to_domain_event = app.mapper.to_domain_event
    batch = []
    # Each session's id as text, made once per batch (a UUID's str() is a Python-level format;
    # its `int` is a fast key).
    texts: dict[int, str] = {}
    for notification in notifications:
        try:
            event: Any = to_domain_event(notification)
        except TopicError:
            event = _unknown(app, notification)
        originator_id = notification.originator_id
        key = originator_id.int
        session_id = texts.get(key)
        if session_id is None:
            session_id = texts[key] = str(originator_id)
        batch.append(Logged(notification.id, event, session_id))
    return batch


def _unknown(app: Application[UUID], notification: Notification) -> UnknownEvent:
    state: dict[str, Any] = app.mapper.transcoder.decode(notification.state)
    return UnknownEvent(
        UUID(str(notification.originator_id)), notification.originator_version,
        notification.topic, state,
    )
