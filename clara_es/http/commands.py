"""Commands: start a session, and every client and agent signal of the catalogue.

The routes, their bodies (OpenAPI schemas) and their metrics labels come from the command
catalogue (clara_es/domain/commands/): a command with a `route` is served at
POST /api/sessions/{id}/{route}. Each answers the new UI state; the access check runs before
the command, so a refused caller appends nothing.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, create_model

from clara_es.domain import DomainError, SessionNotFound, UIState
from clara_es.domain.commands import (
    ROUTES,
    Command,
    InvalidCommand,
    StartSession,
)
from clara_es.http.answers import answer
from clara_es.http.auth import Caller, Principal, forbidden
from clara_es.http.problems import ApiProblem, responses
from clara_es.http.service import Service

COMMAND_ERRORS = responses(401, 403, 404, 409, 413, 422, 503)
router = APIRouter(prefix="/api/sessions", tags=["commands"])


def body_model(command: type[Command]) -> type[BaseModel] | None:
    """The JSON body of a command's route: its fields, without who sent it (the token says)."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name not in command.META - command.IN_BODY
    }
    if not fields:
        return None
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{command.__name__}Body", __config__=ConfigDict(extra="forbid"),
        __doc__=command.__doc__, **fields,
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$",
        description="a repeat with the same key and body answers the first answer and appends "
        "nothing; the same key with another body is refused (422)",
    ),
]


def service_of(request: Request) -> Service:
    return request.app.state.service


def status_of(exc: DomainError) -> int:
    if isinstance(exc, SessionNotFound):
        return 404
    return 422 if isinstance(exc, InvalidCommand) else 409


def run(service: Service, caller: Principal, session_id: UUID, command: Command) -> UIState:
    status = 500  # until the command is known to have succeeded or been refused
    try:
        room, participant = service.reads.owner(session_id)
        if not (caller.may_write(room, participant) and caller.may_send(command)):
            raise forbidden(caller, f"{command.name} session {session_id}")
        state = service.app.handle(command, session_id)
        service.reads.fresh.written.wrote(caller, session_id, state.version)
        status = 200
    except ApiProblem as exc:
        status = exc.status
        raise
    except DomainError as exc:
        status = status_of(exc)
        raise
    finally:
        service.metrics.count(command.name, status)
    return state


def answered(service: Service, caller: Principal, session_id: UUID, command: Command) -> Response:
    return answer(run(service, caller, session_id, command))


StartBody = body_model(StartSession)


@router.post("", status_code=201, responses=responses(401, 403, 409, 413, 422, 503),
             name="start", response_model=UIState)
async def start(
    request: Request, caller: Caller, body: StartBody, idempotency_key: IdempotencyKey = None,  # type: ignore[valid-type]
) -> Response:
    """Start a session (idle); a client token may only start its own identity's session."""
    service = service_of(request)
    command = StartSession.build(
        **body.model_dump(exclude_unset=True),  # type: ignore[attr-defined]
        actor=caller.actor, idempotency_key=idempotency_key,
    )
    if not caller.may_start(command.room, command.participant):
        service.metrics.count(command.name, 403)
        raise forbidden(
            caller, f"start a session for {command.participant!r} in {command.room!r}"
        )
    return await service.command(started, service, caller, command)


def started(service: Service, caller: Principal, command: StartSession) -> Response:
    try:
        state = service.app.handle(command)
    except DomainError as exc:
        service.metrics.count(command.name, status_of(exc))
        raise
    service.metrics.count(command.name, 201)
    service.reads.fresh.written.wrote(caller, state.session_id, state.version)
    return answer(state, 201)


BODIES = {route: body_model(command) for route, command in ROUTES.items()}


def _route(command: type[Command]) -> None:
    body = BODIES[command.route or ""]

    async def endpoint(
        request: Request, caller: Principal, session_id: UUID, idempotency_key: IdempotencyKey,
        **kw: Any,
    ) -> Response:
        fields = kw["body"].model_dump(exclude_unset=True) if kw.get("body") is not None else {}
        built = command.build(**fields, actor=caller.actor, idempotency_key=idempotency_key)
        service = service_of(request)
        return await service.command(answered, service, caller, session_id, built)

    params = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=Caller),
        inspect.Parameter("session_id", inspect.Parameter.KEYWORD_ONLY, annotation=UUID),
        inspect.Parameter(
            "idempotency_key", inspect.Parameter.KEYWORD_ONLY, annotation=IdempotencyKey,
            default=None,
        ),
    ]
    if body is not None:
        # A command whose every field has a default (occurred_at, say) may be sent bodiless.
        optional = not any(f.is_required() for f in body.model_fields.values())
        params.append(inspect.Parameter(
            "body", inspect.Parameter.KEYWORD_ONLY, annotation=body | None if optional else body,
            **({"default": None} if optional else {})))
    endpoint.__signature__ = inspect.Signature(params, return_annotation=Response)  # type: ignore[attr-defined]
    router.add_api_route(
        f"/{{session_id}}/{command.route}", endpoint, methods=["POST"], name=command.name,
        response_model=UIState, responses=COMMAND_ERRORS, description=command.__doc__,
        summary=(command.__doc__ or command.name).splitlines()[0],
    )


for _command in ROUTES.values():
    _route(_command)
