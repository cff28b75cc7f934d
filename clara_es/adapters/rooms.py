"""Room cleanup through LiveKit's RoomService (livekit-api's Twirp client).

remove_participant, then delete_room when the room belongs to the session. Only LiveKit's own
Twirp `not_found` means there is nothing left to clean: a Twirp `bad_route`, or a 404 that is
not a Twirp error at all (a proxy's page, a URL with the wrong base path) means the request
never reached a RoomService, and the cleanup fails saying so. Transient failures (5xx,
unavailable, the connection dropped) are retried by tenacity with exponential backoff,
sleeping on the injected clock (so a virtual clock never really waits); anything else fails
the cleanup at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import tenacity
from livekit import api
from livekit.api.room_service import RoomService

from clara_es.config import Settings
from clara_es.domain import Clock
from clara_es.process import CleanupResult, RoomCleaner, SessionRef, SkippedRoomCleaner

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset({"unavailable", "internal", "deadline_exceeded", "resource_exhausted"})
REQUEST_TIMEOUT_S = 10.0
NOT_FOUND = "not_found"
UNKNOWN = "unknown"  # what livekit-api reports when the error body is not Twirp's JSON

Call = Callable[[RoomService], Awaitable[object]]


class CleanupGaveUp(Exception):
    pass


class Transient(Exception):
    """A failure worth another try: the server was unavailable or the connection dropped."""


def sleeper(clock: Clock) -> Callable[[float], None]:
    """tenacity's `sleep` hook on an injected clock."""
    return lambda seconds: clock.sleep_until(clock.now() + timedelta(seconds=seconds))


@dataclass
class LiveKitRoomCleaner:
    url: str
    api_key: str
    api_secret: str
    clock: Clock
    tries: int = 5
    retry_s: float = 0.5

    def cleanup(self, session: SessionRef, delete_room: bool) -> CleanupResult:
        identity = api.RoomParticipantIdentity(room=session.room, identity=session.participant)
        steps: list[tuple[str, Call]] = [
            (f"participant {session.participant}", lambda rs: rs.remove_participant(identity)),
        ]
        if delete_room:
            request = api.DeleteRoomRequest(room=session.room)
            steps.append((f"room {session.room}", lambda rs: rs.delete_room(request)))
        removed = []
        for what, call in steps:
            try:
                removed.append(f"{what} ({self._call(what, session, call)})")
            except CleanupGaveUp as exc:
                return CleanupResult("failed", f"{what}: {exc}")
        return CleanupResult("cleaned", ", ".join(removed))

    def _call(self, what: str, session: SessionRef, call: Call) -> str:
        """'removed' or 'already gone'; raises CleanupGaveUp."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=tenacity.stop_after_attempt(self.tries),
            wait=tenacity.wait_exponential(multiplier=self.retry_s),
            sleep=sleeper(self.clock),
            before_sleep=lambda state: _log_retry(what, session, state),
            reraise=True,
        )
        try:
            return retrying(self._once, call)
        except Transient as exc:
            raise CleanupGaveUp(f"{exc}, after {self.tries} tries") from exc

    def _once(self, call: Call) -> str:
        """One RoomService call: 'removed' or 'already gone'; Transient or CleanupGaveUp."""
        try:
            asyncio.run(self._request(call))
        except api.ServerError as exc:
            if exc.code == NOT_FOUND:
                return "already gone"
            if exc.code == UNKNOWN and not exc.message and exc.status < 500:
                raise CleanupGaveUp(
                    f"HTTP {exc.status} without a Twirp error: no LiveKit RoomService answers at "
                    f"{self.url!r} (is the URL's base path right?)"
                ) from exc
            error = f"{exc.code} (HTTP {exc.status}) {exc.message}".strip()
            if exc.status < 500 and exc.code not in TRANSIENT_CODES:
                raise CleanupGaveUp(error) from exc
            raise Transient(error) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        return "removed"

    async def _request(self, call: Call) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            rooms = RoomService(http, self.url, self.api_key, self.api_secret, failover=False)
            await call(rooms)


def _log_retry(what: str, session: SessionRef, state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("event=cleanup_retry session=%s target=%r try=%d error=%r wait_s=%.1f",
                session.session_id, what, state.attempt_number, str(error), wait_s)


def room_cleaner(settings: Settings, clock: Clock) -> RoomCleaner:
    """LiveKit when it is configured, otherwise a cleaner that records 'skipped'."""
    if not settings.livekit_configured:
        return SkippedRoomCleaner()
    assert settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret
    return LiveKitRoomCleaner(
        settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret, clock,
        tries=settings.cleanup_tries, retry_s=settings.cleanup_retry_s,
    )
