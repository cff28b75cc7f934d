"""Every error the API returns is an RFC 9457 problem (`application/problem+json`)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from clara_es.application import InvalidCommand
from clara_es.domain import ConcurrencyConflict, InvalidTransition, SessionNotFound
from projections.db import ViewsMissing

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
# FastAPI's 400 for a body it could not parse (anything but a JSON syntax error).
UNPARSABLE = "There was an error parsing the body"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []


class ApiProblem(Exception):
    """Raised anywhere in a request: becomes a problem response with this status."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def problem(
    status: int, detail: str, errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors or []
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "attempt")` -> "attempt"; `("query", "limit")` -> "limit"; nested with dots."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem statuses an operation can answer, for its OpenAPI document."""
    return {
        s: {
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the first
    matching route's): each method tried against the routes as the router would."""
    routes = request.app.router.routes
    return ", ".join(
        method for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes)
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.detail, headers=exc.headers)

    @app.exception_handler(SessionNotFound)
    async def _not_found(request: Request, exc: SessionNotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(InvalidTransition)
    async def _refused(request: Request, exc: InvalidTransition) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(ConcurrencyConflict)
    async def _conflict(request: Request, exc: ConcurrencyConflict) -> JSONResponse:
        return problem(409, f"{exc}; try again")

    @app.exception_handler(InvalidCommand)
    async def _invalid(request: Request, exc: InvalidCommand) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=field_name(e["loc"]), message=e["msg"]) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem(422, f"invalid request: {detail}", errors)

    @app.exception_handler(PersistenceError)
    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(ViewsMissing)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        return problem(503, "the store is unavailable; try again", headers={"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNPARSABLE:
            # JSON that decodes but cannot be read (nested too deeply, say) is an invalid
            # body like any other: 422, as documented.
            message = "the JSON body cannot be read (nested too deeply?)"
            return problem(422, f"invalid request: body: {message}",
                           [FieldError(field="body", message=message)])
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return problem(exc.status_code, str(exc.detail), headers=headers)
