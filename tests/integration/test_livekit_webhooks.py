"""LiveKit webhooks delivered twice at once to two applications on one store."""

from __future__ import annotations

import threading
from uuid import UUID

from clara_es.adapters.livekit import LiveKitWebhooks
from clara_es.application import VoiceSessions
from clara_es.domain import commands
from tests.support.apps import AppFactory
from tests.support.livekit_sdk import KEY, SECRET, Reason, body, recorded, sign


def started(app: VoiceSessions, room: str = "room-1", participant: str = "alice") -> UUID:
    session_id = app.handle(commands.StartSession(room=room, participant=participant)).session_id
    app.handle(commands.Connect(), session_id)
    return session_id


def test_two_deliveries_racing_append_once(make_app: AppFactory) -> None:
    first_app, second_app = make_app(), make_app()
    session_id = started(first_app)
    first_app.handle(commands.MarkConnected(), session_id)
    text = body("participant_left", "WH_race", reason=Reason.SIGNAL_CLOSE)
    barrier = threading.Barrier(2, timeout=10)

    def save_after_both_decided(app: VoiceSessions) -> None:
        original, waited = app.save, []

        def save(*objs: object) -> object:
            if not waited:
                waited.append(True)
                barrier.wait()
            return original(*objs)

        app.save = save  # type: ignore[method-assign]

    results = []
    for app in (first_app, second_app):
        save_after_both_decided(app)
    threads = [
        threading.Thread(
            target=lambda a=a: results.append(LiveKitWebhooks(a, KEY, SECRET).receive(
                text, sign(text)
            ))
        )
        for a in (first_app, second_app)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r.applied) for r in results) == [0, 1]
    assert [t for t, _ in recorded(first_app, session_id, since=3)] == [
        "WebhookReceived", "Disconnected", "ReconnectScheduled",
    ]
