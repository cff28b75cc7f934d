"""Commands: start a session, and every client and agent signal. Each answers the new UI
state; the access check runs before the command, so a refused caller appends nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clara_es.application import InvalidCommand, VoiceSessions
from clara_es.domain import Actor, BackoffPolicy, DomainError, Quality, SessionNotFound, UIState
from clara_es.http.auth import Caller, Principal, forbidden
from clara_es.http.problems import ApiProblem, responses
from clara_es.http.service import Service

# Names and free text end up in views and logs: one line, bounded.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
Attempt = Annotated[int, Field(ge=1, le=100, description="attempt number, from 1")]
LONGEST_DELAY_MS = 24 * 3600 * 1000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(Body):
    room: Name
    participant: Name
    policy: BackoffPolicy | None = Field(None, description="backoff (default: the service's)")

    @model_validator(mode="after")
    def _delays_bounded(self) -> StartBody:
        if self.policy is not None:
            try:
                longest = max(self.policy.schedule_ms())
            except (OverflowError, ValueError):
                longest = LONGEST_DELAY_MS + 1
            if longest > LONGEST_DELAY_MS:
                raise ValueError("policy: every delay must be at most 24 hours")
        return self


class DisconnectedBody(Body):
    reason: Text = "unknown"


class AttemptBody(Body):
    attempt: Attempt


class AttemptFailedBody(Body):
    attempt: Attempt
    error: Text


class QualityBody(Body):
    participant: Name
    quality: Quality


class EndBody(Body):
    reason: Text = "user"


COMMAND_ERRORS = responses(401, 403, 404, 409, 422)
router = APIRouter(prefix="/api/sessions", tags=["commands"])


def service_of(request: Request) -> Service:
    return request.app.state.service


def run(
    request: Request, caller: Principal, session_id: UUID, name: str,
    command: Callable[[VoiceSessions, Actor], UIState],
) -> UIState:
    service = service_of(request)
    status = 500  # until the command is known to have succeeded or been refused
    try:
        room, participant = service.reads.owner(session_id)
        if not caller.may_write(room, participant):
            raise forbidden(caller, f"{name} session {session_id}")
        state = command(service.app, caller.actor)
        status = 200
    except ApiProblem as exc:
        status = exc.status
        raise
    except DomainError as exc:
        status = status_of(exc)
        raise
    finally:
        service.metrics.count(name, status)
    return state


def status_of(exc: DomainError) -> int:
    if isinstance(exc, SessionNotFound):
        return 404
    return 422 if isinstance(exc, InvalidCommand) else 409


@router.post("", status_code=201, responses=responses(401, 403, 409, 422))
def start(request: Request, caller: Caller, body: StartBody) -> UIState:
    """Start a session (idle); a client token may only start its own identity's session."""
    service = service_of(request)
    if not caller.may_start(body.room, body.participant):
        service.metrics.count("start", 403)
        raise forbidden(caller, f"start a session for {body.participant!r} in {body.room!r}")
    try:
        state = service.app.start(body.room, body.participant, body.policy, caller.actor)
    except DomainError as exc:
        service.metrics.count("start", status_of(exc))
        raise
    service.metrics.count("start", 201)
    return state


@router.post("/{session_id}/connect", responses=COMMAND_ERRORS)
def connect(request: Request, caller: Caller, session_id: UUID) -> UIState:
    """The client starts connecting (ignored while already connecting or reconnecting)."""
    return run(request, caller, session_id, "connect", lambda a, who: a.connect(session_id, who))


@router.post("/{session_id}/connected", responses=COMMAND_ERRORS)
def connected(request: Request, caller: Caller, session_id: UUID) -> UIState:
    return run(
        request, caller, session_id, "connected", lambda a, who: a.connected(session_id, who)
    )


@router.post("/{session_id}/disconnected", responses=COMMAND_ERRORS)
def disconnected(
    request: Request, caller: Caller, session_id: UUID, body: DisconnectedBody
) -> UIState:
    """The room dropped: the session schedules its first reconnect attempt."""
    return run(
        request, caller, session_id, "disconnected",
        lambda a, who: a.disconnected(session_id, body.reason, who),
    )


@router.post("/{session_id}/attempt-started", responses=COMMAND_ERRORS)
def attempt_started(
    request: Request, caller: Caller, session_id: UUID, body: AttemptBody
) -> UIState:
    return run(
        request, caller, session_id, "attempt_started",
        lambda a, who: a.attempt_started(session_id, body.attempt, who),
    )


@router.post("/{session_id}/attempt-failed", responses=COMMAND_ERRORS)
def attempt_failed(
    request: Request, caller: Caller, session_id: UUID, body: AttemptFailedBody
) -> UIState:
    return run(
        request, caller, session_id, "attempt_failed",
        lambda a, who: a.attempt_failed(session_id, body.attempt, body.error, who),
    )


@router.post("/{session_id}/reconnected", responses=COMMAND_ERRORS)
def reconnected(request: Request, caller: Caller, session_id: UUID) -> UIState:
    return run(
        request, caller, session_id, "reconnected",
        lambda a, who: a.reconnected(session_id, who),
    )


@router.post("/{session_id}/quality", responses=COMMAND_ERRORS)
def quality(request: Request, caller: Caller, session_id: UUID, body: QualityBody) -> UIState:
    """LiveKit's connection quality of a participant, as the agent sees it."""
    return run(
        request, caller, session_id, "quality",
        lambda a, who: a.quality_changed(session_id, body.participant, body.quality, who),
    )


@router.post("/{session_id}/end", responses=COMMAND_ERRORS)
def end(request: Request, caller: Caller, session_id: UUID, body: EndBody) -> UIState:
    return run(
        request, caller, session_id, "end", lambda a, who: a.end(session_id, body.reason, who)
    )
