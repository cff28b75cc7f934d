"""Webhook ids kept in a long stream, read back by another application on the same store."""

from __future__ import annotations

from clara_es.domain import commands
from tests.support.apps import AppFactory
from tests.support.scenarios import connected


def test_webhook_ids_survive_snapshots_and_a_new_process(make_app: AppFactory) -> None:
    writer = make_app()
    session_id = connected(writer)

    def joined_or_left(index: int) -> commands.Webhook:
        if index % 2:
            return commands.WebhookParticipantJoined(webhook_id=f"WH_{index}")
        return commands.WebhookParticipantLeft(
            webhook_id=f"WH_{index}", reason="SIGNAL_CLOSE", user_initiated=False
        )

    for i in range(60):  # 60 webhooks, about 200 events: past the snapshot interval
        writer.handle(joined_or_left(i), session_id)
    reader = make_app()
    version = reader.status(session_id).version
    assert reader.snapshots is not None
    assert list(reader.snapshots.get(session_id)), "the stream should have a snapshot by now"
    for i in (0, 1, 30, 59):
        _, again = reader.handle_with_events(joined_or_left(i), session_id)
        assert again == []
    assert reader.status(session_id).version == version
