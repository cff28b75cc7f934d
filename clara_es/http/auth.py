"""Who may call the API: LiveKit-style JWTs signed with the configured API key and secret.

  client  identity = the participant; may start and touch only its own sessions
  agent   kind "agent" with a room grant; may touch only the sessions of that room
  read    room_list grant and no room; may only read (any session, the stats)

Missing or bad token: 401. A valid token outside its rights: 403. Either way nothing is
appended, because the check runs before the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from livekit import api

from clara_es.adapters.livekit.tokens import agent_token
from clara_es.domain import Actor
from clara_es.domain.commands import Command
from clara_es.http.problems import ApiProblem

DEFAULT_TTL = timedelta(hours=6)
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Role(StrEnum):
    CLIENT = "client"
    AGENT = "agent"
    READ = "read"


@dataclass(frozen=True)
class Principal:
    role: Role
    identity: str
    room: str | None

    @property
    def actor(self) -> Actor:
        return Actor.AGENT if self.role is Role.AGENT else Actor.CLIENT

    def may_read(self, room: str, participant: str) -> bool:
        return self.role is Role.READ or self.may_write(room, participant)

    def may_write(self, room: str, participant: str) -> bool:
        if self.role is Role.CLIENT:
            return participant == self.identity
        if self.role is Role.AGENT:
            return room == self.room
        return False

    def may_send(self, command: Command) -> bool:
        """The agent's own reports (claiming and finishing a pipeline restart, its session's
        errors and close) come from agent tokens only: a client cannot say a pipeline
        restarted."""
        return not command.agent_only or self.role is Role.AGENT

    def may_start(self, room: str, participant: str) -> bool:
        if self.role is Role.CLIENT:
            return participant == self.identity and room == self.room
        return self.may_write(room, participant)


def mint(
    api_key: str, api_secret: str, role: Role, identity: str, room: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """A token for one role; clients and agents need a room, readers have none."""
    if role is not Role.READ and not room:
        raise ValueError(f"a {role} token needs a room")
    if role is Role.AGENT:
        assert room is not None
        return agent_token(api_key, api_secret, room, identity, ttl)
    token = api.AccessToken(api_key, api_secret).with_identity(identity).with_ttl(ttl)
    if role is Role.CLIENT:
        return token.with_grants(api.VideoGrants(room_join=True, room=room)).to_jwt()
    return token.with_grants(api.VideoGrants(room_list=True)).to_jwt()


# Verified tokens remembered per process (each until it expires); the oldest go when full.
TOKENS_KEPT = 10_000


class Authenticator:
    """Verifies tokens; a token verified once is remembered until it expires, so a client's
    requests after its first cost a dictionary look-up, not a signature check."""

    def __init__(
        self, api_key: str, api_secret: str, now: Callable[[], float] = time.time
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError(
                "the HTTP API needs CLARA_ES_LIVEKIT_API_KEY and CLARA_ES_LIVEKIT_API_SECRET "
                "to verify its tokens"
            )
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._now = now
        self._verified: dict[str, tuple[Principal, float]] = {}

    def principal(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and self._now() < known[1]:
            return known[0]
        principal = self._verify(token)
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(expires, int | float):
            if len(self._verified) >= TOKENS_KEPT:
                self._verified.clear()
            self._verified[token] = (principal, float(expires))
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims = self._verifier.verify(token)
        except jwt.ExpiredSignatureError:
            raise ApiProblem(401, "token expired", CHALLENGE) from None
        except jwt.InvalidSignatureError as exc:
            raise ApiProblem(401, f"invalid token: {exc}", CHALLENGE) from None
        except jwt.DecodeError:
            raise ApiProblem(
                401, "the bearer token is not a clara-es token: print one with `clara-es token`",
                CHALLENGE,
            ) from None
        except jwt.PyJWTError as exc:
            raise ApiProblem(401, f"invalid token: {exc}", CHALLENGE) from None
        video = claims.video or api.VideoGrants()
        if claims.kind == "agent" or video.agent:
            if not video.room:
                raise ApiProblem(401, "agent token without a room grant", CHALLENGE)
            return Principal(Role.AGENT, claims.identity, video.room)
        if video.room_join and claims.identity:
            return Principal(Role.CLIENT, claims.identity, video.room)
        if video.room_list and not video.room:
            return Principal(Role.READ, claims.identity, None)
        raise ApiProblem(401, "token grants neither a room, an agent nor reads", CHALLENGE)


def bearer_token(value: bytes) -> str | None:
    """The token of an Authorization header's value; None unless it is a bearer token."""
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


bearer = HTTPBearer(auto_error=False, description="A clara-es token (`clara-es token`)")


def caller_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise ApiProblem(401, "missing bearer token (Authorization: Bearer ...)", CHALLENGE)
    authenticator: Authenticator = request.app.state.service.authenticator
    return authenticator.principal(credentials.credentials)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, checked on the event loop: a remembered token is a look-up, a new one a
    signature check of tens of microseconds, cheaper than a hop to the thread pool."""
    return caller_of(request, credentials)


Caller = Annotated[Principal, Depends(authenticate)]


def forbidden(principal: Principal, what: str) -> ApiProblem:
    return ApiProblem(403, f"a {principal.role} token for {principal.identity!r} may not {what}")
