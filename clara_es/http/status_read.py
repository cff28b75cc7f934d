"""GET /api/sessions/{id} answered in plain ASGI: the request a status light and a dashboard
poll most, served without FastAPI's routing, dependency solving and exception layers.

Only the plain case is answered here: a token this process accepts, a session the caller may
read, at most `min_version` in the query or `X-Clara-Min-Version`, and a state found. It is
the same work as the route in reads.py (the access check, read-your-writes, the view or the
stream, the same headers) in one hop to a thread of its own. Anything else (no token, a bad
one, 403, 404, a malformed id or query, a store error) goes to the FastAPI route, which
answers it as it always has: the route stays the one definition of the API (and its OpenAPI).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_to_bytes
from uuid import UUID

from starlette.types import ASGIApp, Receive, Scope, Send

from clara_es.http.auth import Principal, bearer_token
from clara_es.http.freshness import SOURCE, VIEWS_BEHIND
from clara_es.http.problems import ApiProblem
from clara_es.http.service import Service

PATH = re.compile(r"/api/sessions/([0-9A-Fa-f-]{32,36})")
MIN_VERSION_QUERY = re.compile(rb"min_version=(\d{1,10})")
LARGEST_VERSION = 2**31 - 1
# The status reads' threads (a hop to one costs less than the thread pool of anyio's
# `run_in_threadpool`); more than the reads' pool of connections would only wait for one.
THREADS = 16


def status_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(THREADS, thread_name_prefix="status-read")


class StatusReads:
    def __init__(self, app: ASGIApp, service: Service, threads: ThreadPoolExecutor) -> None:
        self.app = app
        self.service = service
        self.threads = threads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = self._plain(scope) if scope["type"] == "http" else None
        if request is None:
            await self.app(scope, receive, send)
            return
        caller, session_id, at_least = request
        try:
            answer = await asyncio.wrap_future(
                self.threads.submit(self._read, caller, session_id, at_least))
        except Exception:
            answer = None  # the route answers it, with its problem response
        if answer is None:
            await self.app(scope, receive, send)
            return
        body, source, behind = answer
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (SOURCE.lower().encode(), source.encode()),
            (VIEWS_BEHIND.lower().encode(), str(behind).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})

    def _plain(self, scope: Scope) -> tuple[Principal, UUID, int] | None:
        """(caller, session, version asked) of a plain status read; None for anything else."""
        if scope["method"] != "GET":
            return None
        match = PATH.fullmatch(scope["path"])
        if match is None:
            return None
        try:
            session_id = UUID(match[1])
        except ValueError:
            return None
        at_least = 0
        query = scope["query_string"]
        if query:
            asked = MIN_VERSION_QUERY.fullmatch(unquote_to_bytes(query))
            if asked is None:
                return None
            at_least = int(asked[1])
        token = header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token is not None:
                    return None  # repeated: the route says which one counts
                token = bearer_token(value)
                if token is None:
                    return None
            elif name == b"x-clara-min-version":
                if header is not None or not value.isdigit():
                    return None
                header = int(value)
                at_least = max(at_least, header)
        if token is None or at_least > LARGEST_VERSION:
            return None
        try:
            caller = self.service.authenticator.principal(token)
        except ApiProblem:
            return None
        return caller, session_id, at_least

    def _read(
        self, caller: Principal, session_id: UUID, at_least: int
    ) -> tuple[bytes, str, int] | None:
        reads = self.service.reads
        room, participant = reads.owner(session_id)
        if not caller.may_read(room, participant):
            return None
        state, source = reads.status_from(
            session_id, reads.fresh.needed(caller, session_id, at_least))
        return state.model_dump_json().encode(), source, reads.fresh.recently_behind()
