"""The HTTP application: commands, reads, the live feed, LiveKit webhooks, health, metrics,
and the two pages (the status light at `/`, the dashboard at `/dashboard`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from clara_es.adapters.livekit.webhooks import UnknownRoom, WebhookRejected, WebhookUnreadable
from clara_es.http import batch, commands, docs, problems, reads
from clara_es.http.command_post import CommandPosts
from clara_es.http.freshness import MIN_VERSION, SOURCE, VIEWS_BEHIND
from clara_es.http.guards import (
    BodyLimit,
    PendingWork,
    StoreDeadline,
    hide_tokens_in_access_log,
)
from clara_es.http.problems import ApiProblem, responses
from clara_es.http.service import Service
from clara_es.http.status_read import StatusReads, status_threads

log = logging.getLogger(__name__)
STATIC = files("clara_es.http") / "static"
# The longest shutdown waits for requests answered 503 whose work still runs on the store.
STORE_DRAIN_S = 60.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    store: str
    projection_lag: dict[str, int]
    max_lag: int
    due_backlog: int = 0
    oldest_overdue_s: float = 0.0
    max_overdue_s: float = 0.0


class WebhookOutcome(BaseModel):
    webhook_id: str
    event: str
    room: str
    applied: int
    duplicates: int
    note: str


ops = APIRouter(tags=["operations"])


@ops.get("/healthz")
async def healthz() -> Health:
    """The process is up (answered on the event loop: never behind busy request threads)."""
    return Health(status="ok")


# /readyz asks the store from a thread of its own, so requests that hold every pooled
# thread (waiting on a store that is down) never hold up the answer.
_probe = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz")


@ops.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> Readiness | JSONResponse:
    """The store answers within the store timeout, no view is more than `max_lag` events
    behind the log, and no due timer or effect waits more than `max_overdue_s` past its time."""
    service: Service = request.app.state.service
    options = service.options
    try:
        lag, due = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(
                _probe, lambda: (service.reads.lag(), service.reads.backlog())
            ),
            options.store_timeout_s,
        )
    except TimeoutError:
        body = Readiness(
            status=f"store unreachable: no answer within {options.store_timeout_s:g} s",
            store=service.store.backend, projection_lag={}, max_lag=options.max_lag)
        return JSONResponse(body.model_dump(), status_code=503)
    except Exception as exc:
        log.warning("not ready: %s", exc)
        body = Readiness(status=f"store unreachable: {exc}", store=service.store.backend,
                         projection_lag={}, max_lag=options.max_lag)
        return JSONResponse(body.model_dump(), status_code=503)
    unready = [f"stopped: {', '.join(service.crashed)}"] if service.crashed else []
    if max(lag.values(), default=0) > options.max_lag:
        unready.append("projections behind")
    if due.oldest_overdue_s > options.max_overdue_s:
        unready.append("due work behind")
    body = Readiness(status="; ".join(unready) or "ready", store=service.store.backend,
                     projection_lag=lag, max_lag=options.max_lag, due_backlog=due.jobs,
                     oldest_overdue_s=round(due.oldest_overdue_s, 3),
                     max_overdue_s=options.max_overdue_s)
    return JSONResponse(body.model_dump(), status_code=503) if unready else body


@ops.get("/metrics", response_class=Response,
         responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(request: Request) -> Response:
    """Prometheus exposition format."""
    service: Service = request.app.state.service
    return Response(service.metrics.exposition(), media_type="text/plain; version=0.0.4")


@ops.post("/api/webhooks/livekit", tags=["webhooks"],
          responses=responses(401, 404, 413, 422, 503))
async def livekit_webhook(request: Request) -> WebhookOutcome:
    """LiveKit's webhooks, verified by their signed Authorization JWT; a redelivery appends
    nothing."""
    service: Service = request.app.state.service
    body = await request.body()
    authorization = request.headers.get("Authorization")
    try:
        await run_in_threadpool(service.webhooks.verify, body, authorization)
    except WebhookUnreadable as exc:
        raise ApiProblem(422, str(exc)) from None
    except WebhookRejected as exc:
        raise ApiProblem(401, str(exc)) from None
    try:
        result = await run_in_threadpool(service.webhooks.receive, body, authorization)
    except UnknownRoom as exc:
        raise ApiProblem(404, str(exc)) from None
    except WebhookRejected as exc:
        raise ApiProblem(422, str(exc)) from None
    return WebhookOutcome(
        webhook_id=result.webhook_id, event=result.event, room=result.room,
        applied=len(result.applied), duplicates=len(result.duplicates), note=result.note,
    )


pages = APIRouter(include_in_schema=False)


@pages.get("/", response_class=HTMLResponse)
def status_page() -> str:
    return (STATIC / "index.html").read_text()


@pages.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> str:
    return (STATIC / "dashboard.html").read_text()


def create_app(service: Service) -> FastAPI:
    """The app over an opened Service; the app's lifespan starts and closes the service."""

    pending = PendingWork()
    status_reads = status_threads()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.changes.bind(asyncio.get_running_loop())
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            # Requests answered 503 may still be writing: the store closes after them.
            await pending.drain(STORE_DRAIN_S)
            status_reads.shutdown(wait=False)
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="clara-es",
        summary="Event-sourced LiveKit voice sessions that recover from network blinks.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    problems.install(app)
    # Added last, run first: the size limit before the deadline, both before any route; the
    # plain status read and the plain command inside both.
    app.add_middleware(CommandPosts, service=service, handlers=app.exception_handlers)
    app.add_middleware(StatusReads, service=service, threads=status_reads)
    app.add_middleware(StoreDeadline, seconds=service.options.store_timeout_s,
                       pending=pending)
    app.add_middleware(BodyLimit, max_bytes=service.options.max_body_bytes)
    if service.options.cors_origins:
        _allow_origins(app, service.options.cors_origins)
    hide_tokens_in_access_log()
    _count_invalid_commands(app, service)
    app.include_router(commands.router)
    app.include_router(batch.router)
    app.include_router(reads.router)
    app.include_router(ops)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    docs.install(app)
    _document_problem(app)
    return app


def _allow_origins(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Outermost: a preflight is answered before any other layer, and every answer (503 and
    413 included) carries the headers a page of an allowed origin needs to read it."""
    app.add_middleware(
        CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", MIN_VERSION,
                       "Last-Event-ID"],
        expose_headers=[SOURCE, VIEWS_BEHIND, "Retry-After"], max_age=600,
    )


def _count_invalid_commands(app: FastAPI, service: Service) -> None:
    """A command refused for its body (422 before the handler runs) counts as `invalid`."""
    respond = app.exception_handlers[RequestValidationError]

    async def counted(request: Request, exc: Exception) -> Response:
        route = request.scope.get("route")
        if request.method == "POST" and isinstance(route, APIRoute) and route.path.startswith(
            commands.router.prefix
        ):
            service.metrics.count(route.name, 422)
        return await respond(request, exc)

    app.add_exception_handler(RequestValidationError, counted)


def _document_problem(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI components, where `responses()` refers to it."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = problems.Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components.update(components["Problem"].pop("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
