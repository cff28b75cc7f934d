# ruff: noqa: F811  (pytest fixtures imported from http_helpers)
"""Why a participant left, the same for webhooks, the agent's room and the client's room."""

from __future__ import annotations

import base64
import hashlib
import json
from uuid import UUID

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from clara_es.adapters.livekit import LiveKitWebhooks
from clara_es.adapters.livekit.leave_reasons import leave_reason
from clara_es.application import VoiceSessions
from clara_es.domain import ConnectionState
from clara_es.http import Service
from clara_es.replay.verify import verify_session
from tests.support.http_service import (  # noqa: F401
    API_KEY,
    API_SECRET,
    ROOM,
    USER,
    base_url,
    client,
    command,
    service,
    start_session,
)
from tests.support.livekit_sdk import recorded
from tests.support.scenarios import connected

Reason = models.DisconnectReason


def signed(kind: str, webhook_id: str, reason: int, room: str = ROOM) -> tuple[str, str]:
    event = WebhookEvent(event=kind, id=webhook_id, room=models.Room(name=room, sid="RM_1"),
                         created_at=1_767_225_600)
    event.participant.CopyFrom(models.ParticipantInfo(identity=USER, sid="PA_1"))
    text = json.loads(MessageToJson(event))
    text["participant"]["disconnectReason"] = reason  # a number, as a newer server may send
    body = json.dumps(text)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return body, api.AccessToken(API_KEY, API_SECRET).with_sha256(digest).to_jwt()


@pytest.mark.parametrize("reason", ["PARTICIPANT_REMOVED", "DUPLICATE_IDENTITY", "ROOM_DELETED"])
def test_removed_replaced_or_deleted_ends_the_session_without_a_schedule(
    app: VoiceSessions, reason: str
) -> None:
    session_id = connected(app, ROOM, USER)
    hooks = LiveKitWebhooks(app, API_KEY, API_SECRET)
    hooks.receive(*signed("participant_left", "WH_1", Reason.Value(reason)))
    assert app.status(session_id).connection_state == ConnectionState.ENDED
    assert recorded(app, session_id, since=3) == [
        ("WebhookReceived", None),
        ("SessionEnded", f"participant left ({reason})"),
    ]
    assert verify_session(app, session_id) is None


def test_a_network_reason_is_an_outage(app: VoiceSessions) -> None:
    session_id = connected(app, ROOM, USER)
    LiveKitWebhooks(app, API_KEY, API_SECRET).receive(
        *signed("participant_left", "WH_1", Reason.SIGNAL_CLOSE)
    )
    assert recorded(app, session_id)[-2:] == [
        ("Disconnected", "SIGNAL_CLOSE"),
        ("ReconnectScheduled", 1),
    ]


def test_a_reason_this_sdk_does_not_know_is_recorded_as_unknown_over_http(
    client: httpx.Client, service: Service
) -> None:
    session_id = start_session(client)
    command(client, session_id, "connect")
    command(client, session_id, "connected")
    body, signature = signed("participant_left", "WH_99", 99)
    response = client.post("/api/webhooks/livekit", content=body,
                           headers={"Authorization": signature})
    assert response.status_code == 200
    assert response.json()["applied"] == 1
    assert recorded(service.app, UUID(session_id))[-2:] == [
        ("Disconnected", "UNKNOWN_REASON (99)"),
        ("ReconnectScheduled", 1),
    ]


def test_every_reason_is_classified_once() -> None:
    ends = {name for name, code in Reason.items() if leave_reason(code).ends_session}
    assert {"CLIENT_INITIATED", "PARTICIPANT_REMOVED", "DUPLICATE_IDENTITY",
            "ROOM_DELETED"} <= ends
    assert not ends & {"UNKNOWN_REASON", "SIGNAL_CLOSE", "CONNECTION_TIMEOUT", "MIGRATION",
                       "SERVER_SHUTDOWN", "STATE_MISMATCH"}
    assert leave_reason(None).text == "UNKNOWN_REASON"
    assert not leave_reason(1234).ends_session
