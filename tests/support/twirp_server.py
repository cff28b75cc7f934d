"""A loopback stand-in for LiveKit's RoomService, speaking its Twirp protocol.

It checks what a LiveKit server checks: the bearer JWT is signed with the API secret and
carries the grant the method needs, and the protobuf body names the room (and participant).
Rooms and participants live in a dict; removing what is not there answers 404 not_found,
as LiveKit does. `fail(method, status, times)` makes the next calls answer an error (a Twirp
error with `code`, or with `page=True` an HTML page, as a proxy in front of the server would).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from livekit import api

API_KEY = "test-key"
API_SECRET = "test-secret-that-is-long-enough-for-hs256"
PREFIX = "/twirp/livekit.RoomService/"
STATUS_CODES = {404: "not_found", 401: "unauthenticated", 403: "permission_denied",
                503: "unavailable", 500: "internal"}


@dataclass
class Call:
    method: str
    room: str
    identity: str
    grants: api.VideoGrants | None


@dataclass
class FakeRoomService:
    rooms: dict[str, set[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[web.Response]] = field(default_factory=dict)
    url: str = ""
    delay_s: float = 0.0  # every call answers this much later (a slow server)

    def fail(
        self, method: str, status: int, times: int = 1, code: str | None = None,
        page: bool = False,
    ) -> None:
        for _ in range(times):
            answer = (web.Response(status=status, text="<html>Not Found</html>",
                                   content_type="text/html")
                      if page else _error(status, "injected", code))
            self.failures.setdefault(method, []).append(answer)

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            token = request.headers["Authorization"].removeprefix("Bearer ")
            claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
        except Exception as exc:
            return _error(401, f"bad token: {exc}")
        grants = claims.video
        if method == "RemoveParticipant":
            req = api.RoomParticipantIdentity.FromString(body)
            self.calls.append(Call(method, req.room, req.identity, grants))
            if not (grants and grants.room_admin and grants.room == req.room):
                return _error(403, "needs roomAdmin for the room")
            if queued := self.failures.get(method):
                return queued.pop(0)
            if req.identity not in self.rooms.get(req.room, set()):
                return _error(404, "participant not found")
            self.rooms[req.room].discard(req.identity)
            return web.Response(body=api.RemoveParticipantResponse().SerializeToString())
        if method == "DeleteRoom":
            req_room = api.DeleteRoomRequest.FromString(body)
            self.calls.append(Call(method, req_room.room, "", grants))
            if not (grants and grants.room_create):
                return _error(403, "needs roomCreate")
            if queued := self.failures.get(method):
                return queued.pop(0)
            if self.rooms.pop(req_room.room, None) is None:
                return _error(404, "room not found")
            return web.Response(body=api.DeleteRoomResponse().SerializeToString())
        return _error(404, f"no method {method}", code="bad_route")


def _error(status: int, msg: str, code: str | None = None) -> web.Response:
    return web.json_response({"code": code or STATUS_CODES.get(status, "unknown"), "msg": msg},
                             status=status)


@contextmanager
def fake_room_service() -> Iterator[FakeRoomService]:
    """Serve a FakeRoomService on 127.0.0.1 (a free port) in a background thread."""
    fake = FakeRoomService()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post(PREFIX + "{method}", fake.handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()
