"""Room cleanup through the real livekit-api client against a loopback RoomService."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from clara_es.adapters.rooms import LiveKitRoomCleaner, room_cleaner
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import VirtualClock, commands
from clara_es.process import CLEANUP_SKIPPED, SessionRef, SkippedRoomCleaner
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.twirp_server import API_KEY, API_SECRET, FakeRoomService, fake_room_service
from tests.support.worker import failed_session, settings, worker_on


@pytest.fixture
def livekit() -> FakeRoomService:
    with fake_room_service() as fake:
        yield fake


def cleaner(fake: FakeRoomService, clock: VirtualClock, tries: int = 5) -> LiveKitRoomCleaner:
    return LiveKitRoomCleaner(fake.url, API_KEY, API_SECRET, clock, tries=tries, retry_s=0.5)


def ref(room: str = "room-1", participant: str = "alice") -> SessionRef:
    return SessionRef(uuid4(), room, participant)


def test_calls_carry_room_identity_and_admin_token(
    livekit: FakeRoomService, clock: VirtualClock
) -> None:
    livekit.rooms = {"room-1": {"alice", "agent"}}
    result = cleaner(livekit, clock).cleanup(ref(), delete_room=True)
    assert result.outcome == "cleaned"
    assert [(c.method, c.room, c.identity) for c in livekit.calls] == [
        ("RemoveParticipant", "room-1", "alice"), ("DeleteRoom", "room-1", ""),
    ]
    remove, delete = livekit.calls
    assert remove.grants is not None and remove.grants.room_admin
    assert delete.grants is not None and delete.grants.room_create
    assert livekit.rooms == {}


def test_shared_room_is_not_deleted(livekit: FakeRoomService, clock: VirtualClock) -> None:
    livekit.rooms = {"room-1": {"alice", "bob"}}
    assert cleaner(livekit, clock).cleanup(ref(), delete_room=False).outcome == "cleaned"
    assert livekit.rooms == {"room-1": {"bob"}}


def test_not_found_counts_as_clean(livekit: FakeRoomService, clock: VirtualClock) -> None:
    result = cleaner(livekit, clock).cleanup(ref(), delete_room=True)
    assert result.outcome == "cleaned"
    assert "already gone" in result.detail
    assert [c.method for c in livekit.calls] == ["RemoveParticipant", "DeleteRoom"]


def test_two_503s_then_success_retries_with_backoff(
    livekit: FakeRoomService, clock: VirtualClock
) -> None:
    livekit.rooms = {"room-1": {"alice"}}
    livekit.fail("RemoveParticipant", 503, times=2)
    before = clock.now()
    result = cleaner(livekit, clock).cleanup(ref(), delete_room=True)
    assert result.outcome == "cleaned"
    assert [c.method for c in livekit.calls] == ["RemoveParticipant"] * 3 + ["DeleteRoom"]
    assert clock.now() - before == timedelta(seconds=0.5 + 1.0)  # waited on the virtual clock


def test_persistent_503_fails_and_wrong_secret_is_refused(
    livekit: FakeRoomService, clock: VirtualClock
) -> None:
    livekit.fail("RemoveParticipant", 503, times=10)
    failed = cleaner(livekit, clock, tries=3).cleanup(ref(), delete_room=True)
    assert failed.outcome == "failed"
    assert "unavailable" in failed.detail and "3 tries" in failed.detail
    bad = LiveKitRoomCleaner(livekit.url, API_KEY, "another-secret-long-enough-for-hs256", clock)
    refused = bad.cleanup(ref(), delete_room=True)
    assert refused.outcome == "failed" and "unauthenticated" in refused.detail


def test_no_livekit_settings_means_skipped_cleaner(clock: VirtualClock) -> None:
    assert isinstance(room_cleaner(settings(), clock), SkippedRoomCleaner)
    configured = settings(livekit_url="http://127.0.0.1:1", livekit_api_key="k",
                          livekit_api_secret="s")
    assert isinstance(room_cleaner(configured, clock), LiveKitRoomCleaner)


def test_unreachable_server_is_retried_on_the_settings_schedule(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    configured = settings(livekit_url="http://127.0.0.1:1", livekit_api_key=API_KEY,
                          livekit_api_secret=API_SECRET, cleanup_tries=3, cleanup_retry_s=0.25)
    before = clock.now()
    with caplog.at_level("WARNING", logger="clara_es.adapters.rooms"):
        result = room_cleaner(configured, clock).cleanup(ref(), delete_room=True)
    assert result.outcome == "failed"
    assert result.detail.startswith("participant alice: ClientConnectorError")
    assert result.detail.endswith("after 3 tries")
    assert clock.now() - before == timedelta(seconds=0.25 + 0.5)  # on the virtual clock
    retries = [r.getMessage() for r in caplog.records if "event=cleanup_retry" in r.getMessage()]
    assert [m.split(" try=")[1].split(" ")[0] for m in retries] == ["1", "2"]


def types(app: VoiceSessions, session_id: UUID) -> list[str]:
    return [e.type for e in session_history(app, session_id)]


def test_failed_session_is_cleaned_up_after_the_grace_time(
    store: Store, make_app: AppFactory, clock: VirtualClock, livekit: FakeRoomService
) -> None:
    app = make_app()
    livekit.rooms = {"room-1": {"alice"}}
    livekit.fail("DeleteRoom", 503, times=2)
    config = settings(cleanup_grace_s=30.0)
    with worker_on(app, cleaner=cleaner(livekit, clock), config=config) as worker:
        session_id = failed_session(app, clock)
        failed_at = clock.now()
        worker.run_until(failed_at + timedelta(seconds=29))
        assert "CleanupRequested" not in types(app, session_id)
        worker.run_until(failed_at + timedelta(seconds=60))
    history = session_history(app, session_id)
    kinds = [e.type for e in history]
    assert kinds.count("ReconnectAttemptFailed") == 5
    assert kinds[-3:] == ["Failed", "CleanupRequested", "SessionCleanedUp"]
    requested = history[-2]
    assert requested.occurred_at == failed_at + timedelta(seconds=30)
    assert "participant alice (removed)" in history[-1].details["removed"]
    assert livekit.rooms == {}
    assert app.status(session_id).connection_state == "failed"


def test_without_livekit_the_skip_is_recorded(
    store: Store, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    with worker_on(app) as worker:
        session_id = failed_session(app, clock)
        worker.run_until(clock.now() + timedelta(seconds=31))
    last = session_history(app, session_id)[-1]
    assert last.type == "CleanupSkipped"
    assert last.details["reason"] == CLEANUP_SKIPPED


def test_a_room_shared_with_a_live_session_is_kept_until_the_last_one_goes(
    store: Store, make_app: AppFactory, clock: VirtualClock, livekit: FakeRoomService
) -> None:
    app = make_app()
    livekit.rooms = {"room-1": {"alice", "bob"}}
    with worker_on(app, cleaner=cleaner(livekit, clock)) as worker:
        bob = connected(app, "room-1", "bob")
        failed_session(app, clock)  # alice, in the same room
        worker.run_until(clock.now() + timedelta(seconds=31))
        assert livekit.rooms == {"room-1": {"bob"}}
        app.handle(commands.EndSession(reason="user"), bob)
        worker.run_pending()
    assert livekit.rooms == {}
    assert [c.method for c in livekit.calls] == [
        "RemoveParticipant", "RemoveParticipant", "DeleteRoom",
    ]
    assert types(app, bob)[-1] == "SessionCleanedUp"
