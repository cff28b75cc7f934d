"""From stored notifications to Changes: decode each event and fold it into its session.

Event types are taken by class name. A stored event whose class this code does not know
still reaches the views (history records it generically); it only has no session state.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.utils import TopicError

from clara_es.application.history import event_details, event_type
from clara_es.domain import VoiceSession
from projections.view import Change

log = logging.getLogger(__name__)


class SessionFold:
    """The session aggregate after each event, kept in a bounded cache between batches.

    A cached session is used only when it is exactly one version behind the event;
    otherwise the session is read from the store at that version (after a restart, or
    when a transaction rolled back after the cached copy had moved on).
    """

    def __init__(self, app: Application[UUID], maxsize: int = 20_000) -> None:
        self._app = app
        self._cache: OrderedDict[UUID, VoiceSession] = OrderedDict()
        self._maxsize = maxsize

    def after(self, event: Any) -> VoiceSession | None:
        session_id, version = event.originator_id, event.originator_version
        prior = self._cache.pop(session_id, None)
        if prior is not None and prior.version != version - 1:
            prior = None
        if prior is None and version > 1:
            try:
                prior = self._app.repository.get(session_id, version=version - 1)
            except TopicError:
                log.warning("session %s holds an event type this code does not know", session_id)
                return None
        session = event.mutate(prior)
        if not isinstance(session, VoiceSession):
            return None
        self._cache[session_id] = session
        if len(self._cache) > self._maxsize:
            self._cache.popitem(last=False)
        return session

    def forget(self) -> None:
        self._cache.clear()


def to_changes(
    app: Application[UUID], fold: SessionFold, notifications: list[Notification]
) -> list[Change]:
    return [to_change(app, fold, n) for n in notifications]


def to_change(app: Application[UUID], fold: SessionFold, notification: Notification) -> Change:
    try:
        event = app.mapper.to_domain_event(notification)
    except TopicError:
        return _unknown(app, notification)
    return change_of(event, notification.id, fold)


def change_of(event: Any, notification_id: int, fold: SessionFold) -> Change:
    return Change(
        notification_id=notification_id,
        session_id=event.originator_id,
        version=event.originator_version,
        type=event_type(event),
        occurred_at=event.timestamp,
        actor=getattr(event, "actor", ""),
        cause=getattr(event, "cause", {}),
        details=event_details(event),
        session=fold.after(event),
    )


def _unknown(app: Application[UUID], notification: Notification) -> Change:
    state: dict[str, Any] = app.mapper.transcoder.decode(notification.state)
    occurred_at = state.pop("timestamp")
    return Change(
        notification_id=notification.id,
        session_id=UUID(str(notification.originator_id)),
        version=notification.originator_version,
        type=notification.topic.rsplit(".", 1)[-1],
        occurred_at=occurred_at,
        actor=str(state.pop("actor", "")),
        cause=state.pop("cause", {}),
        details=state,
        session=None,
    )
