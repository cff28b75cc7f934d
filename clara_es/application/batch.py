"""What a reporter buffered while it could not reach the service, applied in one go.

The reporter sends its facts in the order they happened, each with its `occurred_at` and its
idempotency key, and the time it sent them (`sent_at`, on its own clock). The service's time on
receipt minus `sent_at` estimates how far the reporter's clock is behind (plus the time in
transit, which shifts every fact alike and so keeps the delays between them); it corrects every
`occurred_at` by it and is recorded with each fact. A clock more than MAX_CLOCK_OFFSET off is
refused. Each fact is decided as if it had arrived live: delays are measured between the times
the facts happened, so an outage reported afterwards yields the history of one reported live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from pydantic import BaseModel

from clara_es.application.sessions import VoiceSessions
from clara_es.domain import DomainError, SessionNotFound, UIState
from clara_es.domain.commands import Command, InvalidCommand

MAX_CLOCK_OFFSET = timedelta(minutes=10)


class ClockTooFarOff(InvalidCommand):
    """The reporter's clock is further from the service's than a batch may be corrected by."""


class SignalResult(BaseModel):
    type: str
    idempotency_key: str | None
    status: int  # as the single command's route would have answered
    state: UIState | None = None
    detail: str | None = None


class BatchResult(BaseModel):
    clock_offset_ms: int
    results: list[SignalResult]
    state: UIState


def clock_offset(sent_at: datetime, received_at: datetime) -> timedelta:
    offset = received_at - sent_at
    if abs(offset) > MAX_CLOCK_OFFSET:
        raise ClockTooFarOff(
            f"the reporter's clock is {offset.total_seconds():.1f} s off the service's "
            f"(sent_at {sent_at.isoformat()}); at most {MAX_CLOCK_OFFSET.total_seconds():.0f} s "
            "can be corrected: set the clock right and send again"
        )
    return offset


def apply_batch(
    app: VoiceSessions, session_id: UUID, sent_at: datetime, commands: Sequence[Command],
    route_of: dict[type[Command], str] | None = None,
) -> BatchResult:
    """Apply `commands` in order: a result for each, then the session's UI state."""
    offset = clock_offset(sent_at, app.clock.now())
    results = []
    for command in commands:
        kind = (route_of or {}).get(type(command), command.name)
        try:
            state = app.handle(command, session_id, clock_offset=offset)
        except SessionNotFound:
            raise
        except DomainError as exc:
            status = 422 if isinstance(exc, InvalidCommand) else 409
            results.append(SignalResult(type=kind, idempotency_key=command.idempotency_key,
                                        status=status, detail=str(exc)))
            continue
        results.append(SignalResult(type=kind, idempotency_key=command.idempotency_key,
                                    status=200, state=state))
    return BatchResult(clock_offset_ms=round(offset.total_seconds() * 1000), results=results,
                       state=app.status(session_id))
