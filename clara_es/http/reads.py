"""Reads: the session list, one session's UI state, its history, the stats, the live feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from clara_es.domain import ConnectionState, UIState
from clara_es.domain.commands import LocalInstant
from clara_es.http.answers import answer
from clara_es.http.auth import (
    CHALLENGE,
    Caller,
    Principal,
    Role,
    bearer,
    caller_of,
    forbidden,
)
from clara_es.http.freshness import MIN_VERSION, SOURCE
from clara_es.http.problems import ApiProblem, responses
from clara_es.http.queries import HistoryRow, SessionSummary, Stats
from clara_es.http.service import Service
from clara_es.http.sse import FeedResponse, describe, feed
from projections.queries import LONGEST_GRACE_S

router = APIRouter(prefix="/api", tags=["reads"])
READ_ERRORS = responses(401, 403, 404, 422, 503)


def service_of(request: Request) -> Service:
    return request.app.state.service


async def min_version(
    query: Annotated[int | None, Query(
        alias="min_version", ge=0, le=2**31 - 1,
        description="answer at least this stream version (the `version` a command answered)",
    )] = None,
    header: Annotated[int | None, Header(
        alias=MIN_VERSION, ge=0, le=2**31 - 1, description="the same as `min_version`",
    )] = None,
) -> int:
    return max(query or 0, header or 0)


MinVersion = Annotated[int, Depends(min_version)]


def readable(request: Request, caller: Principal, session_id: UUID) -> None:
    room, participant = service_of(request).reads.owner(session_id)
    if not caller.may_read(room, participant):
        raise forbidden(caller, f"read session {session_id}")


@router.get("/sessions", responses=responses(401, 422, 503))
def list_sessions(
    request: Request,
    response: Response,
    caller: Caller,
    state: ConnectionState | None = None,
    room: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[SessionSummary]:
    """Sessions with their UI state and attempt counts, most recently updated first.

    A client token sees its own identity's sessions, an agent token its room's. The caller's
    own recent writes are in the list (it waits briefly for the views); `X-Clara-Views-Behind`
    says how many events the views are behind the log."""
    reads = service_of(request).reads
    reads.fresh.caller_settled(caller)
    rows = reads.sessions(state, room, limit, offset)
    reads.fresh.say(response)
    return [r for r in rows if caller.may_read(r.room, r.participant)]


@router.get("/sessions/{session_id}", responses=READ_ERRORS, response_model=UIState)
def get_session(
    request: Request, response: Response, caller: Caller, session_id: UUID, at_least: MinVersion
) -> Response:
    """The UI state: status light text, Start Session button, attempt n of max.

    At least the version asked for (`min_version`), and at least what the caller's own last
    command on this session answered: read from the session's stream when the view is behind
    (`X-Clara-Source: stream`)."""
    readable(request, caller, session_id)
    reads = service_of(request).reads
    needed = reads.fresh.needed(caller, session_id, at_least)
    state, source = reads.status_from(session_id, needed)
    response.headers[SOURCE] = source
    reads.fresh.say(response)
    return answer(state, headers=response.headers)


@router.get("/sessions/{session_id}/history", responses=READ_ERRORS)
def get_history(
    request: Request,
    response: Response,
    caller: Caller,
    session_id: UUID,
    at_least: MinVersion,
    since: Annotated[LocalInstant | None, Query(description="at or after (UTC if no zone)")] = None,
    until: Annotated[LocalInstant | None, Query(description="before (UTC if no zone)")] = None,
    type: Annotated[list[str], Query(description="only these event types")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[HistoryRow]:
    """The session's stored events, oldest first (from the history view).

    Waits briefly for the view to hold `min_version` and the caller's own last command on this
    session; 503 with Retry-After when it does not in time."""
    readable(request, caller, session_id)
    reads = service_of(request).reads
    reads.fresh.history_reaches(session_id, reads.fresh.needed(caller, session_id, at_least))
    rows = reads.history(session_id, since=since, until=until, types=type, limit=limit)
    reads.fresh.say(response)
    return rows


@router.get("/stats", responses=responses(401, 403, 422, 503))
def get_stats(
    request: Request,
    response: Response,
    caller: Caller,
    grace: Annotated[float, Query(ge=0, le=LONGEST_GRACE_S)] = 300,
) -> Stats:
    """Dashboard stats: sessions by state, recovery rate, time to recover, failures, orphans."""
    if caller.role is not Role.READ:
        raise forbidden(caller, "read the stats of every session")
    reads = service_of(request).reads
    reads.fresh.caller_settled(caller)
    stats = reads.stats(timedelta(seconds=grace))
    reads.fresh.say(response)
    return stats


async def feed_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    access_token: Annotated[
        str | None, Query(description="the token, for EventSource (which cannot send headers)")
    ] = None,
) -> Principal:
    if credentials is None and access_token:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=access_token)
    if credentials is None:
        raise ApiProblem(401, "missing bearer token (header or access_token)", CHALLENGE)
    return caller_of(request, credentials)


async def live_start(
    request: Request,
    session_id: UUID,
    caller: Annotated[Principal, Depends(feed_caller)],
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="the last version received: resume right after it"),
    ] = None,
) -> int | None:
    """Checked before the stream opens, so refusals are plain problem responses."""
    await run_in_threadpool(readable, request, caller, session_id)
    if last_event_id is not None:
        version = (await run_in_threadpool(service_of(request).app.status, session_id)).version
        if last_event_id > version:
            raise ApiProblem(
                422, f"last-event-id: {last_event_id} is past the stream's version {version}"
            )
    return last_event_id


@router.get(
    "/sessions/{session_id}/live",
    response_class=Response,
    responses={**describe(), **READ_ERRORS},
)
async def live(
    request: Request, session_id: UUID, after: Annotated[int | None, Depends(live_start)]
) -> Response:
    """Server-Sent Events: the UI state after every version of the session's stream.

    Each event's id is the stream version; reconnect with `Last-Event-ID` to get exactly the
    versions after it. Without it, the first event is the current state."""
    service = service_of(request)
    return FeedResponse(
        feed(service.app, service.changes, session_id, after, service.feed_poll))
