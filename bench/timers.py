"""What the timer benchmarks share: worker processes on wall time, a bulk backlog of connected
sessions, a bare-sleeper baseline, and reading the timers' lateness back from the log.

Lateness is read from the facts themselves: a watchdog's ReconnectAttemptFailed (caused by
`attempt_timed_out`) is late by its recorded time minus the deadline the decision table set
(`attempt_deadline` of the ReconnectScheduled before it); a cleanup timer's CleanupRequested
by its recorded time minus Failed + the grace time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import BackoffPolicy, VirtualClock, commands
from clara_es.domain.connection import attempt_deadline
from clara_es.domain.events import (
    CleanupRequested,
    Disconnected,
    Failed,
    ReconnectAttempted,
    ReconnectAttemptFailed,
    ReconnectScheduled,
    SessionCleanedUp,
)

POOL = {"POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "2"}


def settings_for(overrides: dict[str, Any]) -> Any:
    from clara_es.config import Settings

    return Settings.model_construct(**{**Settings.model_construct().model_dump(), **overrides})


def _worker(url: str, overrides: dict[str, Any], stop: Any, ready: Any) -> None:
    """One `clara-es run`: the process manager, its timers and effects, on wall time."""
    from clara_es.adapters.rooms import room_cleaner
    from clara_es.process import start_worker

    store = Store.from_url(url)
    settings = settings_for(overrides)
    app = VoiceSessions({**store.eventsourcing_env(), **POOL})
    worker = start_worker(app, room_cleaner(settings, app.clock), settings, store=store)
    ready.put(os.getpid())
    try:
        worker.run_forever(stop)
    finally:
        worker.close()
        app.close()


class Workers:
    """`count` worker processes, started and ready on enter, stopped on exit."""

    def __init__(self, store: Store, count: int, overrides: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        ready = ctx.Queue()
        self.procs = [ctx.Process(target=_worker, args=(store.url, overrides, self.stop, ready))
                      for _ in range(count)]
        self._ready = ready

    def __enter__(self) -> Workers:
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            self._ready.get(timeout=120)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()


def connected_backlog(
    app: VoiceSessions, sessions: int, policy: BackoffPolicy, copy: int = 2000
) -> list[tuple[UUID, str, str]]:
    """`sessions` connected sessions, decided in memory and inserted as stored (fast); their
    ids, rooms and participants."""
    # Stamped with the wall clock's time: the timers their facts set (the idle timeout) are
    # not already overdue when the workers start.
    memory = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                           clock=VirtualClock(datetime.now(UTC)), policy=policy)
    made = []
    for i in range(sessions):
        room, user = f"room-{i}", f"user-{i}"
        sid = memory.handle(commands.StartSession(room=room, participant=user)).session_id
        memory.handle(commands.Connect(), sid)
        memory.handle(commands.MarkConnected(), sid)
        made.append((sid, room, user))
    copy_log(memory, app, copy)
    return made


def copy_log(memory: VoiceSessions, app: VoiceSessions, copy: int = 2000) -> None:
    """Insert everything `memory` (decided in memory, fast) stored into `app`'s store, `copy`
    events per insert, and close `memory`."""
    position = 0
    while notifications := memory.recorder.select_notifications(
            start=position, limit=copy, inclusive_of_start=False):
        app.recorder.insert_events([
            StoredEvent(originator_id=n.originator_id, originator_version=n.originator_version,
                        topic=n.topic, state=n.state) for n in notifications])
        position = notifications[-1].id
    memory.close()


class BareSleeper:
    """The baseline: a thread that sleeps until a tick every `every` seconds and records how
    late it woke (what the loaded machine alone costs a timer)."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.late: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BareSleeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        due = time.monotonic() + self.every
        while not self._stop.is_set():
            time.sleep(max(0.0, due - time.monotonic()))
            self.late.append(time.monotonic() - due)
            due += self.every


@dataclass
class Timeline:
    watchdog_late: list[float] = field(default_factory=list)
    cleanup_late: list[float] = field(default_factory=list)
    # per session, seconds from its Disconnected: Failed, SessionCleanedUp
    failed_after: dict[UUID, float] = field(default_factory=dict)
    cleaned_after: dict[UUID, float] = field(default_factory=dict)
    scheduled: int = 0


def timeline(app: VoiceSessions, after: int, timeout_s: float, grace_s: float) -> Timeline:
    """Read the facts after notification `after` and measure every timer's lateness."""
    result = Timeline()
    timeout, grace = timedelta(seconds=timeout_s), timedelta(seconds=grace_s)
    deadline: dict[UUID, Any] = {}
    dropped: dict[UUID, Any] = {}
    failed: dict[UUID, Any] = {}
    position = after
    while notifications := app.recorder.select_notifications(
            start=position, limit=5000, inclusive_of_start=False):
        position = notifications[-1].id
        for notification in notifications:
            fact = app.mapper.to_domain_event(notification)
            sid = fact.originator_id
            cause = (getattr(fact, "cause", None) or {}).get("name")
            if isinstance(fact, Disconnected):
                dropped.setdefault(sid, fact.recorded_at)
            elif isinstance(fact, ReconnectScheduled | ReconnectAttempted):
                result.scheduled += isinstance(fact, ReconnectScheduled)
                deadline[sid] = attempt_deadline(fact, timeout)
            elif isinstance(fact, ReconnectAttemptFailed) and cause == "attempt_timed_out":
                late = (fact.recorded_at - deadline[sid]).total_seconds()
                result.watchdog_late.append(late)
            elif isinstance(fact, Failed):
                failed[sid] = fact.timestamp
                if sid in dropped:
                    result.failed_after[sid] = (fact.recorded_at - dropped[sid]).total_seconds()
            elif isinstance(fact, CleanupRequested) and cause == "request_cleanup":
                if sid in failed:
                    due = failed[sid] + grace
                    result.cleanup_late.append((fact.recorded_at - due).total_seconds())
            elif isinstance(fact, SessionCleanedUp) and sid in dropped:
                result.cleaned_after[sid] = (fact.recorded_at - dropped[sid]).total_seconds()
    return result


def ideal_failed_s(policy: BackoffPolicy, session_id: UUID, timeout_s: float) -> float:
    """When a session whose client never attempts is Failed, with every timer on time."""
    return sum(policy.delay_ms(n, key=str(session_id)) / 1000 + timeout_s
               for n in range(1, policy.max_attempts + 1))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]
