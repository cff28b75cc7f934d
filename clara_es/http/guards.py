"""What every request passes before a route sees it: a body size limit, checked before the
token and before any parsing, and a bounded wait on the store (503 with Retry-After).

Both are plain ASGI middleware, so a 50 MB body is refused from its Content-Length (or, when
it is sent in chunks, as soon as it passes the limit) without being read into memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clara_es.http.problems import problem

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reading lets it through (it turns any other
    error into a 400) to the problem handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes",
                         headers={"Connection": "close"})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = chunked = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        if length is None and chunked is None:
            await self.app(scope, receive, send)  # no body (a GET): nothing to count
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = BodyTooLarge(self.max_bytes)
        response = problem(413, refused.detail, headers=refused.headers)
        await response(scope, receive, send)


class PendingWork:
    """Requests answered 503 whose work still runs on the store: the service closes the
    store only after they end (closing a connection under a running statement crashes)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def add(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, seconds: float) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=seconds)


class StoreDeadline:
    """An /api request that has not answered after `seconds` answers 503 with Retry-After.

    Its work goes on (in its thread, ended by the store's own timeouts) and its late answer
    is dropped; each append is one transaction, so the command was applied whole or not at
    all, and a retry is decided again by the session. Live feeds are long by design and are
    left alone. The deadline is a timer on the event loop, not a task per request: only a
    request that passes it costs a task (the one that sends the 503).
    """

    def __init__(self, app: ASGIApp, seconds: float, pending: PendingWork) -> None:
        self.app = app
        self.seconds = seconds
        self.pending = pending
        self.late: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path.endswith("/live"):
            await self.app(scope, receive, send)
            return
        started = False
        refusal: asyncio.Task[None] | None = None
        request = asyncio.current_task()

        async def watched(message: Message) -> None:
            nonlocal started
            if refusal is not None:
                return  # answered 503 already
            started = started or message["type"] == "http.response.start"
            await send(message)

        def expired() -> None:
            nonlocal refusal
            if started:
                return
            if request is not None:
                self.pending.add(request)  # type: ignore[arg-type]
            log.warning("event=store_deadline path=%s seconds=%s", path, self.seconds)
            retry = str(max(1, round(self.seconds)))
            response = problem(503, f"the store did not answer within {self.seconds:g} s; "
                               "try again", headers={"Retry-After": retry})
            refusal = asyncio.ensure_future(response(scope, receive, send))
            self.late.add(refusal)
            refusal.add_done_callback(self.late.discard)

        timer = asyncio.get_running_loop().call_later(self.seconds, expired)
        try:
            await self.app(scope, receive, watched)
        except Exception:
            if refusal is None:
                raise
            log.exception("event=store_deadline_late_failure path=%s", path)
        finally:
            timer.cancel()
            if refusal is not None:
                await refusal  # the 503 is out before the request ends


class HideTokens(logging.Filter):
    """The live feed takes its token in the query string (`?access_token=`): the access log
    shows it as `access_token=***`."""

    TOKEN = re.compile(r"((?:access_)?token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._hide(a) for a in record.args)
        record.msg = self._hide(record.msg)
        return True

    def _hide(self, value: Any) -> Any:
        return self.TOKEN.sub(r"\1***", value) if isinstance(value, str) else value


def hide_tokens_in_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideTokens) for f in access.filters):
        access.addFilter(HideTokens())
