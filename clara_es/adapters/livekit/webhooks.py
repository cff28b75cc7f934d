"""LiveKit webhooks: verified, mapped to commands, and recorded at most once per webhook id.

LiveKit signs each webhook with a JWT in the Authorization header (the bare token, no
"Bearer"; both are accepted) whose `sha256` claim is the base64 SHA-256 of the body. It
retries deliveries, so a webhook id that a session has already recorded appends nothing, and
with `deliveries` (the HTTP service passes them) an id applied within the retry window
changes nothing at all, whichever sessions it would reach now.

  participant_joined              -> the participant is in the room (connected / reconnected)
  participant_left                -> an outage, or the end of the session when the reason
                                     says so (leave_reasons.py: the user left, was removed or
                                     replaced, the room is gone); an unknown number is unknown
  participant_connection_aborted  -> an outage
  room_finished                   -> every session in the room ends
Other events are accepted and change nothing.

Time: a webhook's fact happened at LiveKit's `createdAt` (whole seconds since the epoch, cut
down, so the true moment is up to 1 s later, never earlier) and is recorded as its
`occurred_at`; the service's time of receipt is `recorded_at` beside it. The rules for every
reporter's time hold (application/sessions.py `occurred`): a `createdAt` more than 5 s in the
service's future (a LiveKit server's clock that far fast) is refused, one before the
session's last fact is taken as that fact's time. A webhook without `createdAt` happened when
it was received.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import jwt
from eventsourcing.utils import get_topic
from google.protobuf.json_format import ParseError
from livekit import api
from livekit.protocol.webhook import WebhookEvent

from clara_es.adapters.livekit.deliveries import WebhookDeliveries
from clara_es.adapters.livekit.leave_reasons import leave_reason
from clara_es.application import VoiceSessions
from clara_es.domain import DomainError, UIState
from clara_es.domain.commands import (
    Webhook,
    WebhookConnectionAborted,
    WebhookParticipantJoined,
    WebhookParticipantLeft,
    WebhookRoomFinished,
)
from clara_es.domain.events import SessionStarted

HANDLED = ("participant_joined", "participant_left", "participant_connection_aborted",
           "room_finished")


class WebhookRejected(DomainError):
    """The webhook is not authentic or cannot be applied; nothing was appended."""


class WebhookUnreadable(WebhookRejected):
    """An authentic webhook (its signature and body hash check out) whose body is not a
    LiveKit event."""


class UnknownRoom(WebhookRejected):
    """No session was ever started in the webhook's room."""


class SessionResolver(Protocol):
    def sessions(self, room: str, participant: str | None) -> list[UUID]:
        """The sessions a webhook about `room` (and `participant`, if given) concerns.

        Raises UnknownRoom when no session was ever started in `room`.
        """
        ...


class RoomIndex:
    """The latest session of each (room, participant), read from the application's events.

    Until a projection of rooms exists, this follows the application's notification log
    (every session's events, in order), keeping only SessionStarted in memory, and reads only
    what was appended since its last lookup. A process holding many rooms should pass a
    resolver backed by a projection instead.
    """

    BATCH = 500

    def __init__(self, app: VoiceSessions) -> None:
        self.app = app
        self._position = 0
        self._rooms: dict[str, dict[str, UUID]] = {}
        self._topic = get_topic(SessionStarted)

    def sessions(self, room: str, participant: str | None) -> list[UUID]:
        self._catch_up()
        if room not in self._rooms:
            raise UnknownRoom(f"unknown room {room!r}: no session was started in it")
        by_participant = self._rooms[room]
        if participant is None:
            return list(by_participant.values())
        return [by_participant[participant]] if participant in by_participant else []

    def _catch_up(self) -> None:
        while batch := self.app.recorder.select_notifications(
            self._position, self.BATCH, topics=[self._topic], inclusive_of_start=False
        ):
            for notification in batch:
                started = self.app.mapper.to_domain_event(notification)
                rooms = self._rooms.setdefault(started.room, {})
                rooms[started.participant] = started.originator_id
            self._position = batch[-1].id


@dataclass(frozen=True)
class WebhookResult:
    webhook_id: str
    event: str
    room: str
    participant: str | None
    applied: list[UIState] = field(default_factory=list)
    duplicates: list[UUID] = field(default_factory=list)
    note: str = ""


class LiveKitWebhooks:
    def __init__(
        self,
        app: VoiceSessions,
        api_key: str,
        api_secret: str,
        resolver: SessionResolver | None = None,
        deliveries: WebhookDeliveries | None = None,
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError("LiveKit webhooks need the API key and secret that sign them")
        self.app = app
        self.api_key = api_key
        self._receiver = api.WebhookReceiver(api.TokenVerifier(api_key, api_secret))
        self.resolver: SessionResolver = resolver or RoomIndex(app)
        self.deliveries = deliveries

    def receive(self, body: bytes | str, authorization: str | None) -> WebhookResult:
        """Verify one delivery and apply it. Raises WebhookRejected, appending nothing."""
        event = self.verify(body, authorization)
        room, identity = event.room.name, event.participant.identity or None
        result = WebhookResult(webhook_id=event.id, event=event.event, room=room,
                               participant=identity)
        if event.event not in HANDLED:
            return replace(result, note=f"{event.event or 'an unnamed event'} changes no session")
        if not event.id:
            raise WebhookRejected(f"{event.event} webhook without an id: cannot record it once")
        if not room:
            raise WebhookRejected(f"{event.event} webhook without a room name")
        about = None if event.event == "room_finished" else identity
        if event.event != "room_finished" and not identity:
            raise WebhookRejected(f"{event.event} webhook without a participant identity")
        if self.deliveries is not None and (when := self.deliveries.seen(event.id)):
            return replace(result, note=f"webhook {event.id} was applied at "
                           f"{when.isoformat()}: a redelivery changes nothing")
        session_ids = self.resolver.sessions(room, about)
        if not session_ids:
            return replace(result, note=f"no session for participant {identity!r} in room {room!r}")
        command = _command(event, room, identity)
        for session_id in session_ids:
            state, appended = self.app.handle_with_events(command, session_id)
            if appended:
                result.applied.append(state)
            else:
                result.duplicates.append(session_id)
        if self.deliveries is not None:
            self.deliveries.record(event.id, event.event)
        return result

    def verify(self, body: bytes | str, authorization: str | None) -> WebhookEvent:
        token = (authorization or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise WebhookRejected("no Authorization header: LiveKit signs every webhook")
        try:
            text = body.decode() if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise WebhookRejected("webhook body is not UTF-8 text") from None
        try:
            return self._receiver.receive(text, token)
        except jwt.ExpiredSignatureError:
            raise WebhookRejected("webhook token expired") from None
        except jwt.InvalidIssuerError:
            raise WebhookRejected(
                f"webhook signed for another API key (expected {self.api_key!r})"
            ) from None
        except jwt.InvalidSignatureError:
            raise WebhookRejected(
                "bad webhook signature: not signed with this API secret"
            ) from None
        except jwt.PyJWTError as exc:
            raise WebhookRejected(f"invalid webhook token: {exc}") from None
        except ParseError as exc:
            raise WebhookUnreadable(f"webhook body is not a LiveKit event: {exc}") from None
        except Exception as exc:
            # WebhookReceiver raises bare Exceptions for a missing or mismatching body hash.
            if str(exc) == "hash mismatch":
                raise WebhookRejected(
                    "webhook body does not match its signed sha256 (tampered or re-encoded)"
                ) from None
            if "sha256" in str(exc):
                raise WebhookRejected("webhook token carries no body sha256") from None
            raise


def _command(event: WebhookEvent, room: str, identity: str | None) -> Webhook:
    """The command a webhook delivery is, recorded with its arguments (for replay)."""
    common: dict[str, Any] = {"webhook_id": event.id, "room": room, "participant": identity,
                              "occurred_at": created_at(event)}
    if event.event == "participant_joined":
        return WebhookParticipantJoined(**common)
    if event.event == "room_finished":
        return WebhookRoomFinished(**common)
    if event.event == "participant_connection_aborted":
        return WebhookConnectionAborted(**common)
    left = leave_reason(event.participant.disconnect_reason)
    return WebhookParticipantLeft(
        **common, reason=left.text, user_initiated=left.user_left, ends_session=left.ends_session
    )


def created_at(event: WebhookEvent) -> datetime | None:
    """When LiveKit created the event (whole seconds), or None when it did not say."""
    if event.created_at <= 0:
        return None
    return datetime.fromtimestamp(event.created_at, UTC)
