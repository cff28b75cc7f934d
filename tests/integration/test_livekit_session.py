"""Webhook ids kept in a long stream, read back by another application on the same store."""

from __future__ import annotations

from tests.support.apps import AppFactory
from tests.support.scenarios import connected


def test_webhook_ids_survive_snapshots_and_a_new_process(make_app: AppFactory) -> None:
    writer = make_app()
    session_id = connected(writer)

    def joined_or_left(index: int) -> None:
        def decide(session, signal):  # type: ignore[no-untyped-def]
            if index % 2:
                session.report_participant_joined(signal)
            else:
                session.report_participant_left("SIGNAL_CLOSE", False, signal)

        return decide  # type: ignore[return-value]

    for i in range(60):  # 60 webhooks, about 200 events: past the snapshot interval
        writer.deliver_webhook(session_id, f"WH_{i}", "participant_left", {}, joined_or_left(i))
    reader = make_app()
    version = reader.status(session_id).version
    assert reader.snapshots is not None
    assert list(reader.snapshots.get(session_id)), "the stream should have a snapshot by now"
    for i in (0, 1, 30, 59):
        again = reader.deliver_webhook(
            session_id, f"WH_{i}", "participant_left", {}, joined_or_left(i)
        )
        assert again is None
    assert reader.status(session_id).version == version
