"""LiveKit webhooks signed as a LiveKit server signs them, recorded in the application."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from livekit import api

from clara_es.adapters.livekit import LiveKitWebhooks, UnknownRoom, WebhookRejected
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import ConnectionState, VirtualClock, commands
from clara_es.domain.commands import InvalidCommand
from clara_es.replay.verify import verify_session
from tests.support.livekit_sdk import KEY, SECRET, Reason, body, recorded, sign


def deliver(hooks: LiveKitWebhooks, text: str, **signing: object):  # type: ignore[no-untyped-def]
    return hooks.receive(text, sign(text, **signing))  # type: ignore[arg-type]


@pytest.fixture
def hooks(app: VoiceSessions) -> LiveKitWebhooks:
    return LiveKitWebhooks(app, KEY, SECRET)


def started(app: VoiceSessions, room: str = "room-1", participant: str = "alice") -> UUID:
    session_id = app.handle(commands.StartSession(room=room, participant=participant)).session_id
    app.handle(commands.Connect(), session_id)
    return session_id


def test_joined_left_joined_left_drive_the_session(
    app: VoiceSessions, hooks: LiveKitWebhooks
) -> None:
    session_id = started(app)
    text = body("participant_joined", "WH_1")
    result = hooks.receive(text, sign(text))  # the bare JWT, as LiveKit sends it
    assert [s.status_text for s in result.applied] == ["Connected"]
    text = body("participant_left", "WH_2", reason=Reason.CONNECTION_TIMEOUT)
    result = hooks.receive(text, "Bearer " + sign(text))  # also accepted
    assert result.applied[0].status_text == "Reconnecting... (attempt 1 of 5)"
    deliver(hooks, body("participant_joined", "WH_3"))
    deliver(hooks, body("participant_left", "WH_4", reason=Reason.CLIENT_INITIATED))
    assert app.status(session_id).connection_state == ConnectionState.ENDED
    assert recorded(app, session_id, since=2) == [
        ("WebhookReceived", None),
        ("Connected", None),
        ("WebhookReceived", None),
        ("Disconnected", "CONNECTION_TIMEOUT"),
        ("ReconnectScheduled", 1),
        ("WebhookReceived", None),
        ("Reconnected", 1),
        ("WebhookReceived", None),
        ("SessionEnded", "participant left (CLIENT_INITIATED)"),
    ]
    entries = session_history(app, session_id)
    assert [e.details["webhook_id"] for e in entries if e.type == "WebhookReceived"] == [
        "WH_1", "WH_2", "WH_3", "WH_4",
    ]
    disconnected = next(e for e in entries if e.type == "Disconnected")
    assert disconnected.actor == "system"
    assert disconnected.cause["name"] == "webhook participant_left"
    assert disconnected.cause["args"]["webhook_id"] == "WH_2"
    assert disconnected.cause["args"]["reason"] == "CONNECTION_TIMEOUT"
    # Every webhook recorded its decision's arguments, so today's code can re-run them all.
    assert verify_session(app, session_id) is None


def test_connection_aborted_is_an_outage(app: VoiceSessions, hooks: LiveKitWebhooks) -> None:
    session_id = started(app)
    deliver(hooks, body("participant_connection_aborted", "WH_9"))
    assert recorded(app, session_id)[-2:] == [
        ("Disconnected", "connection aborted"),
        ("ReconnectScheduled", 1),
    ]


def test_a_retried_webhook_appends_nothing_twice(
    app: VoiceSessions, hooks: LiveKitWebhooks
) -> None:
    session_id = started(app)
    text = body("participant_left", "WH_7", reason=Reason.SIGNAL_CLOSE)
    first = deliver(hooks, text)
    after_first = session_history(app, session_id)
    again = hooks.receive(text, sign(text))  # LiveKit signs each retry anew
    assert first.applied and not first.duplicates
    assert again.applied == [] and again.duplicates == [session_id]
    assert session_history(app, session_id) == after_first
    # A new application on the same store (another process, or after a restart) knows too.
    assert LiveKitWebhooks(app, KEY, SECRET).receive(text, sign(text)).duplicates == [session_id]
    assert session_history(app, session_id) == after_first


def test_room_finished_ends_each_participants_latest_session(
    app: VoiceSessions, hooks: LiveKitWebhooks
) -> None:
    older = started(app, "room-1", "alice")
    app.handle(commands.EndSession(), older)
    alice = started(app, "room-1", "alice")  # alice's new session, after the index was made
    bob = started(app, "room-1", "bob")
    elsewhere = started(app, "room-2", "carol")
    result = deliver(hooks, body("room_finished", "WH_fin", identity=None))
    assert sorted(s.session_id for s in result.applied) == sorted([alice, bob])
    for session_id in (alice, bob):
        assert recorded(app, session_id)[-1] == ("SessionEnded", "room finished")
    assert recorded(app, older)[-1] == ("SessionEnded", "user")
    assert app.status(elsewhere).connection_state == ConnectionState.CONNECTING


def test_other_participants_and_other_events_change_nothing(
    app: VoiceSessions, hooks: LiveKitWebhooks
) -> None:
    session_id = started(app)
    before = app.recorder.max_notification_id()
    agent = deliver(hooks, body("participant_joined", "WH_a", identity="clara-agent"))
    assert agent.applied == [] and "no session for participant 'clara-agent'" in agent.note
    track = deliver(hooks, body("track_published", "WH_t"))
    assert track.applied == [] and track.note == "track_published changes no session"
    assert app.recorder.max_notification_id() == before
    assert app.status(session_id).connection_state == ConnectionState.CONNECTING


def _tampered(text: str) -> tuple[str, str]:
    return text.replace("alice", "mallory"), sign(text)


REJECTIONS = {
    "bad signature": (
        lambda t: (t, sign(t, secret="another-secret-of-at-least-32-chars")),
        "bad webhook signature",
    ),
    "wrong key": (lambda t: (t, sign(t, key="APIsomeoneElse")), "signed for another API key"),
    "expired token": (lambda t: (t, sign(t, ttl=-600)), "webhook token expired"),
    "tampered body": (_tampered, "does not match its signed sha256"),
    "unknown room": (
        lambda t: (t.replace("room-1", "room-nowhere"), sign(t.replace("room-1", "room-nowhere"))),
        "unknown room 'room-nowhere'",
    ),
    "no authorization": (lambda t: (t, ""), "no Authorization header"),
    "no body hash": (lambda t: (t, api.AccessToken(KEY, SECRET).to_jwt()), "no body sha256"),
    "not a webhook": (lambda t: ("{not json", sign("{not json")), "not a LiveKit event"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejections_are_clear_and_append_nothing(
    app: VoiceSessions, hooks: LiveKitWebhooks, case: str
) -> None:
    session_id = started(app)
    before = app.recorder.max_notification_id()
    make, message = REJECTIONS[case]
    text, authorization = make(body("participant_left", "WH_bad", reason=Reason.SIGNAL_CLOSE))
    with pytest.raises(WebhookRejected, match=message) as raised:
        hooks.receive(text, authorization)
    assert isinstance(raised.value, UnknownRoom) == (case == "unknown room")
    assert app.recorder.max_notification_id() == before
    assert app.status(session_id).connection_state == ConnectionState.CONNECTING


def test_a_webhook_happened_at_livekits_created_at_and_was_recorded_when_received(
    app: VoiceSessions, hooks: LiveKitWebhooks, clock: VirtualClock
) -> None:
    session_id = started(app)
    app.handle(commands.MarkConnected(), session_id)
    left_at = clock.now() + timedelta(seconds=30)
    clock.advance(75)  # LiveKit delivers it 45 s after it happened (a retried delivery)
    text = body("participant_left", "WH_late", reason=Reason.SIGNAL_CLOSE,
                created_at=int(left_at.timestamp()))
    deliver(hooks, text)
    entries = session_history(app, session_id)
    dropped = next(e for e in entries if e.type == "Disconnected")
    assert dropped.occurred_at == left_at
    assert dropped.cause["recorded_at"] == clock.now().isoformat()
    scheduled = next(e for e in entries if e.type == "ReconnectScheduled")
    assert scheduled.details["due_at"] == left_at + timedelta(seconds=1)  # from when it happened


def test_a_webhook_from_a_clock_far_ahead_is_refused_and_appends_nothing(
    app: VoiceSessions, hooks: LiveKitWebhooks, clock: VirtualClock
) -> None:
    session_id = started(app)
    before = app.recorder.max_notification_id()
    ahead = int(clock.now().timestamp()) + 60
    with pytest.raises(InvalidCommand, match="in the service's future"):
        deliver(hooks, body("participant_left", "WH_ahead", created_at=ahead))
    assert app.recorder.max_notification_id() == before
    assert app.status(session_id).connection_state == ConnectionState.CONNECTING
