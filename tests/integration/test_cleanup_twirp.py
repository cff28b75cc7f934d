"""Cleanup counts only LiveKit's Twirp `not_found` as already clean (a loopback RoomService)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from clara_es.adapters.rooms import LiveKitRoomCleaner
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import VirtualClock, commands
from clara_es.process import SessionRef
from tests.support.livekit_sdk import recorded
from tests.support.twirp_server import API_KEY, API_SECRET, FakeRoomService, fake_room_service


@pytest.fixture
def livekit() -> Iterator[FakeRoomService]:
    with fake_room_service() as fake:
        fake.rooms = {"room-1": {"alice"}}
        yield fake


def clean_up(app: VoiceSessions, clock: VirtualClock, url: str) -> UUID:
    """What the effect runner does for one session: request, call RoomService, report."""
    session_id = app.handle(commands.StartSession(room="room-1", participant="alice")).session_id
    app.handle(commands.Connect(), session_id)
    _, events = app.handle_with_events(commands.RequestCleanup(reason="test"), session_id)
    request_id = events[-1].request_id  # type: ignore[attr-defined]
    cleaner = LiveKitRoomCleaner(url, API_KEY, API_SECRET, clock, tries=2, retry_s=0.1)
    result = cleaner.cleanup(SessionRef(session_id, "room-1", "alice"), delete_room=True)
    finished = commands.FinishCleanup(
        request_id=request_id, outcome=result.outcome, detail=result.detail
    )
    app.handle(finished, session_id)
    return session_id


def outcome(app: VoiceSessions, session_id: UUID) -> tuple[str, str]:
    kind, _ = recorded(app, session_id)[-1]
    return kind, app.session(session_id).cleanup_outcome or ""


def test_twirp_bad_route_is_a_failed_cleanup(
    app: VoiceSessions, clock: VirtualClock, livekit: FakeRoomService
) -> None:
    livekit.fail("RemoveParticipant", 404, code="bad_route")
    session_id = clean_up(app, clock, livekit.url)
    assert outcome(app, session_id) == ("CleanupFailed", "failed")
    failed = session_history(app, session_id)[-1]
    assert "bad_route (HTTP 404)" in failed.details["error"]
    assert livekit.rooms == {"room-1": {"alice"}}  # nothing was removed


def test_a_404_page_that_is_not_twirp_is_a_failed_cleanup(
    app: VoiceSessions, clock: VirtualClock, livekit: FakeRoomService
) -> None:
    livekit.fail("RemoveParticipant", 404, page=True)
    session_id = clean_up(app, clock, livekit.url)
    assert outcome(app, session_id) == ("CleanupFailed", "failed")


def test_a_wrong_base_path_is_a_failed_cleanup_that_says_so(
    app: VoiceSessions, clock: VirtualClock, livekit: FakeRoomService
) -> None:
    session_id = clean_up(app, clock, livekit.url + "/wrong-base")
    assert outcome(app, session_id) == ("CleanupFailed", "failed")
    error = session_history(app, session_id)[-1].details["error"]
    assert "without a Twirp error" in error and "/wrong-base" in error
    assert livekit.calls == []


def test_twirp_not_found_is_already_clean(
    app: VoiceSessions, clock: VirtualClock, livekit: FakeRoomService
) -> None:
    livekit.rooms = {}
    session_id = clean_up(app, clock, livekit.url)
    assert outcome(app, session_id) == ("SessionCleanedUp", "cleaned")
