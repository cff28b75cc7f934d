"""POST /api/sessions/{id}/signals: what a client buffered while offline, in one request."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from clara_es.application.batch import BatchResult, apply_batch
from clara_es.domain import DomainError
from clara_es.domain.commands import ROUTES, Command, Instant, InvalidCommand, Key
from clara_es.http.auth import Caller, Principal, forbidden
from clara_es.http.commands import service_of, status_of
from clara_es.http.problems import responses
from clara_es.http.service import Service

router = APIRouter(prefix="/api/sessions", tags=["commands"])
ROUTE_OF = {command: route for route, command in ROUTES.items()}


class BufferedSignal(BaseModel):
    """One buffered fact: `type` is the command route's name, then that route's body fields."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f"one of {', '.join(sorted(ROUTES))}")
    occurred_at: Instant
    idempotency_key: Key


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sent_at: Instant = Field(description="when the client sent this, on its clock")
    signals: list[BufferedSignal] = Field(min_length=1, max_length=500)


def command_of(signal: BufferedSignal, caller: Principal, index: int) -> Command:
    command = ROUTES.get(signal.type)
    if command is None:
        raise InvalidCommand(
            f"signals.{index}.type: {signal.type!r} is not one of {', '.join(sorted(ROUTES))}"
        )
    fields: dict[str, Any] = dict(signal.model_extra or {})
    return command.build(**fields, occurred_at=signal.occurred_at, actor=caller.actor,
                         idempotency_key=signal.idempotency_key)


@router.post("/{session_id}/signals", responses=responses(401, 403, 404, 422), name="signals")
async def signals(
    request: Request, caller: Caller, session_id: UUID, body: Batch
) -> BatchResult:
    """Apply buffered signals in order; a result per signal and the final UI state."""
    service = service_of(request)
    return await service.command(applied, service, caller, session_id, body)


def applied(service: Service, caller: Principal, session_id: UUID, body: Batch) -> BatchResult:
    room, participant = service.reads.owner(session_id)
    if not caller.may_write(room, participant):
        raise forbidden(caller, f"signals to session {session_id}")
    commands = [command_of(s, caller, i) for i, s in enumerate(body.signals)]
    try:
        result = apply_batch(service.app, session_id, body.sent_at, commands, ROUTE_OF)
    except DomainError as exc:
        service.metrics.count("signals", status_of(exc))
        raise
    for command, outcome in zip(commands, result.results, strict=True):
        service.metrics.count(command.name, outcome.status)
    service.reads.fresh.written.wrote(caller, session_id, result.state.version)
    return result
