"""POST /api/sessions/{id}/{command} answered in plain ASGI: the API's most frequent write,
served without FastAPI's routing and dependency solving.

Only the plain case is taken here: one bearer token this process accepts, no body or a JSON
body that the route's body model accepts, at most one Idempotency-Key of the route's
pattern. The command then runs as the route runs it (`commands.answered`, in a command
thread), and an error it raises is answered by the app's own exception handlers. Anything
else goes to the FastAPI route with the body read here, before any work is done: the route
stays the one definition of the API (and of its OpenAPI).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clara_es.domain.commands import ROUTES, Command
from clara_es.http.auth import Principal, bearer_token
from clara_es.http.commands import BODIES, answered
from clara_es.http.problems import ApiProblem
from clara_es.http.service import Service

PATH = re.compile(r"/api/sessions/([0-9A-Fa-f-]{32,36})/([a-z-]{1,64})")
IDEMPOTENCY_KEY = re.compile(rb"[\x21-\x7e]{1,200}")
JSON = re.compile(rb"application/json\s*(;.*)?", re.IGNORECASE)
Handlers = Mapping[Any, Any]


class CommandPosts:
    def __init__(self, app: ASGIApp, service: Service, handlers: Handlers) -> None:
        self.app = app
        self.service = service
        self.handlers = handlers  # the app's, filled before the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain = self._plain(scope) if scope["type"] == "http" else None
        if plain is None:
            await self.app(scope, receive, send)
            return
        caller, session_id, route, key = plain
        body = await _body(receive)
        if body is None:
            return  # the client left before it sent its body
        command = _command(route, body, caller, key)
        if command is None:
            await self.app(scope, _replay(body, receive), send)
            return
        service = self.service
        try:
            response = await service.command(answered, service, caller, session_id, command)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = handler(Request(scope), exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _plain(self, scope: Scope) -> tuple[Principal, UUID, str, str | None] | None:
        """(caller, session, route, idempotency key) of a plain command; None otherwise."""
        if scope["method"] != "POST":
            return None
        match = PATH.fullmatch(scope["path"])
        if match is None or match[2] not in ROUTES or scope["query_string"]:
            return None
        try:
            session_id = UUID(match[1])
        except ValueError:
            return None
        token = key = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token is not None:
                    return None
                token = bearer_token(value)
                if token is None:
                    return None
            elif name == b"idempotency-key":
                if key is not None or not IDEMPOTENCY_KEY.fullmatch(value):
                    return None
                key = value.decode("ascii")
            elif name == b"content-type":
                if content_type is not None or not JSON.fullmatch(value):
                    return None
                content_type = value
        if token is None:
            return None
        try:
            caller = self.service.authenticator.principal(token)
        except ApiProblem:
            return None
        return caller, session_id, match[2], key

    def _handler(self, exc: Exception) -> Any:
        for kind in type(exc).__mro__:
            if kind in self.handlers:
                return self.handlers[kind]
        return None


def _command(route: str, body: bytes, caller: Principal, key: str | None) -> Command | None:
    """The command the route would build from this body; None where the route must answer
    (a body it refuses, with its own 422)."""
    model = BODIES[route]
    fields: dict[str, Any] = {}
    if model is not None:
        if body:
            try:
                fields = model.model_validate_json(body).model_dump(exclude_unset=True)
            except ValidationError:
                return None
        elif any(f.is_required() for f in model.model_fields.values()):
            return None
    try:
        return ROUTES[route].build(**fields, actor=caller.actor, idempotency_key=key)
    except Exception:
        return None


async def _body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the route: the body read here first, then the connection's messages."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
