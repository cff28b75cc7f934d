"""A webhook LiveKit delivers again changes nothing, whichever sessions it would reach now."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from clara_es.adapters.livekit import LiveKitWebhooks
from clara_es.adapters.livekit.deliveries import WebhookDeliveries
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import ConnectionState, VirtualClock, commands
from projections.db import engine, upgrade

KEY, SECRET = "APIclaraTest", "a-secret-of-at-least-32-characters-long"
WINDOW = timedelta(hours=1)


def delivery(kind: str, webhook_id: str, identity: str | None = None) -> tuple[str, str]:
    """A webhook body and the Authorization header LiveKit signs it with."""
    event = WebhookEvent(event=kind, id=webhook_id, room=models.Room(name="room-1", sid="RM_1"))
    if identity is not None:
        event.participant.CopyFrom(models.ParticipantInfo(identity=identity, sid="PA_1"))
    text = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return text, api.AccessToken(KEY, SECRET).with_sha256(digest).to_jwt()


@pytest.fixture
def views(store: Store) -> Iterator[sa.Engine]:
    upgrade(store)
    view_engine = engine(store)
    yield view_engine
    view_engine.dispose()


@pytest.fixture
def hooks(app: VoiceSessions, views: sa.Engine, clock: VirtualClock) -> LiveKitWebhooks:
    return LiveKitWebhooks(app, KEY, SECRET,
                           deliveries=WebhookDeliveries(views, clock, WINDOW))


def test_a_redelivered_room_finished_does_not_end_the_rooms_next_session(
    app: VoiceSessions, hooks: LiveKitWebhooks,
) -> None:
    first = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    app.handle(commands.Connect(), first)
    finished = delivery("room_finished", "WH_finished")
    assert len(hooks.receive(*finished).applied) == 1
    assert app.status(first).connection_state == ConnectionState.ENDED

    second = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    app.handle(commands.Connect(), second)
    again = hooks.receive(*finished)
    assert again.applied == [] and "redelivery" in again.note
    assert app.status(second).connection_state == ConnectionState.CONNECTING  # not ended


def test_a_webhook_id_is_forgotten_after_the_window(
    app: VoiceSessions, hooks: LiveKitWebhooks, views: sa.Engine, clock: VirtualClock,
) -> None:
    session_id = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    app.handle(commands.Connect(), session_id)
    left = delivery("participant_connection_aborted", "WH_aborted", "alice")
    assert len(hooks.receive(*left).applied) == 1
    clock.advance(WINDOW + timedelta(seconds=1))
    hooks.receive(*delivery("participant_joined", "WH_joined", "alice"))
    with views.connect() as conn:
        ids = conn.execute(sa.text("SELECT webhook_id FROM webhook_deliveries")).scalars()
        assert list(ids) == ["WH_joined"]
