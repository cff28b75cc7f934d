"""Following the reconnect schedule: what a client does next, from the session's state and time.

One follower for every client of the schedule: the LiveKit client, `clara_es.client`, the demo,
the simulator and the benchmarks. It decides; the caller waits and connects its own way
(asyncio, a virtual clock, the simulator's queue):

    due_attempt(state)   the attempt the schedule calls for next and when, or None
    next_step(state, t)  Wait(until) before the due time, Start(attempt) from it on
    started(events)      whether our StartAttempt was recorded as the attempt (not ignored)
    outcome(n, error)    the command that reports how attempt n ended

`follow` runs the loop for synchronous callers. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from clara_es.domain.commands import Command, FailAttempt, ReportReconnected, StartAttempt
from clara_es.domain.events import ReconnectAttempted
from clara_es.domain.state import ConnectionState


class ScheduleState(Protocol):
    """What the follower reads: a UIState has these."""

    @property
    def connection_state(self) -> ConnectionState: ...

    @property
    def attempt(self) -> int: ...

    @property
    def next_retry_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Wait:
    attempt: int
    until: datetime


@dataclass(frozen=True)
class Start:
    attempt: int
    due_at: datetime

    def command(self, **meta: Any) -> StartAttempt:
        return StartAttempt(attempt=self.attempt, **meta)


def due_attempt(state: ScheduleState) -> Start | None:
    """The next attempt and its due time; None when connected, failed, ended, resuming on its
    own (attempt 0), or while an attempt is in flight (its outcome comes first)."""
    if state.connection_state != ConnectionState.RECONNECTING or not state.attempt:
        return None
    if state.next_retry_at is None:
        return None
    return Start(state.attempt, state.next_retry_at)


def next_step(state: ScheduleState, now: datetime) -> Wait | Start | None:
    due = due_attempt(state)
    if due is None:
        return None
    if now < due.due_at:
        return Wait(due.attempt, due.due_at)
    return due


def started(events: Sequence[object]) -> bool:
    """Whether the events our StartAttempt appended start the attempt (another writer's start,
    a stale timer or a superseded schedule are recorded as SignalIgnored instead)."""
    return any(isinstance(e, ReconnectAttempted) for e in events)


def outcome(attempt: int, error: str | None, **meta: Any) -> Command:
    """Reconnected when the connect worked, else the attempt's failure with its error."""
    if error is None:
        return ReportReconnected(**meta)
    return FailAttempt.build(attempt=attempt, error=error, **meta)


def early_by(due_at: datetime | None, started_at: datetime) -> timedelta | None:
    """How long before its due time an attempt was started (None if not early): the session
    records such a start as reported, and `races`, `replay --verify` and the simulator's
    invariants flag it."""
    if due_at is None or started_at >= due_at:
        return None
    return due_at - started_at


Handle = Callable[[Command], tuple[Any, Sequence[object]]]


def follow(
    handle: Handle,
    state: ScheduleState,
    wait_until: Callable[[datetime], object],
    connect: Callable[[int], str | None],
) -> Any:
    """Follow the schedule until it calls for no attempt: wait until each attempt is due, start
    it, connect (`connect(n)` answers None or the error), report the outcome. `handle` runs a
    command and answers (new state, events appended). Answers the last state."""
    while (due := due_attempt(state)) is not None:
        wait_until(due.due_at)
        state, events = handle(due.command())
        if not started(events):
            continue
        state, _ = handle(outcome(due.attempt, connect(due.attempt)))
    return state
