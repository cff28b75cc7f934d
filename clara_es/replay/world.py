"""The simulated world: sessions, their clients, the network and a timer worker, driven by
one queue ordered by (virtual time, sequence), so a seed replays exactly. After every command
the invariants are checked on the session's stored stream.

`TimerWorker` is the client's side of the schedule (clara_es/domain/schedule.py decides): it
starts each due attempt; it keeps its timers in memory and, after a crash, re-arms them from the
stored sessions. The watchdog that fails an attempt without an outcome is the real one: the
process manager's worker runs between the steps (`run`), on the same clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from clara_es.application import VoiceSessions
from clara_es.domain import Actor, DomainError, VirtualClock, VoiceSession, commands, schedule
from clara_es.domain.status import ui_state
from clara_es.replay.faults import Fault, Plan
from clara_es.replay.invariants import Invariants, Violation
from clara_es.replay.pacing import Paced

STAGGER = 0.01  # seconds between two sessions' starts


@dataclass(frozen=True)
class Crash:
    """The timer worker crashes `after` the start of the run, and restarts `restart_after`
    seconds later. The fault is drawn in one session's plan, but the worker is every
    session's: every session of the run lives through it, whichever shard runs it (or
    `--only`)."""

    index: int  # the session whose plan holds it
    after: timedelta
    restart_after: float


def starts_after(index: int) -> timedelta:
    """When session `index` starts, from the start of the run."""
    return timedelta(seconds=index * STAGGER)


def crash_of(plan: Plan) -> Crash | None:
    """A plan's crash: 0.5 to 5.5 s after the session's first drop (`outage`: the drop comes
    `starts_after` seconds after the session started; the queue adds the same steps)."""
    at = plan.worker_crash_at
    if at is None:
        return None
    first_drop = starts_after(plan.index) + timedelta(seconds=plan.outages[0].starts_after)
    return Crash(plan.index, first_drop + timedelta(seconds=0.5 + at % 5),
                 restart_after=at % 20)


def crashes_of(plans: Iterable[Plan]) -> list[Crash]:
    return [crash for plan in plans if (crash := crash_of(plan)) is not None]


class TraceStep(BaseModel):
    t: float  # seconds since the simulation started
    session: int
    step: str


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    session: int = field(compare=False)
    label: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)


class TimerWorker:
    """Fires due reconnect attempts and attempt deadlines; rebuilt from the store on restart."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.armed: dict[UUID, tuple[int, datetime]] = {}
        self.up = True

    def observe(self, index: int, session: VoiceSession | None = None) -> None:
        """Arm the timer the session's stored state calls for: its next due attempt."""
        if not self.up:
            return
        session_id = self.world.ids[index]
        session = session or self.world.app.session(session_id)
        due = schedule.due_attempt(ui_state(session))
        if due is None:
            self.armed.pop(session_id, None)
            return
        want = (due.attempt, due.due_at)
        if self.armed.get(session_id) == want:
            return
        self.armed[session_id] = want
        self.world.at(due.due_at, index, f"timer due attempt {due.attempt}",
                      lambda: self.fire_due(index, due.attempt))

    def attempt_for(self, index: int, armed: int) -> int:
        """The attempt a firing timer starts: the one it was armed for."""
        return armed

    def fire_due(self, index: int, armed: int) -> None:
        session_id = self.world.ids[index]
        if not self.up or self.armed.get(session_id, (0,))[0] != armed:
            return  # this worker disarmed it (a newer schedule replaced it) or is down
        self.world.client_attempt(index, self.attempt_for(index, armed), f"timer {armed} fires")
        if armed in self.world.plans[index].duplicate_timer:
            self.world.faults[Fault.DUPLICATE] += 1
            self.world.after(
                0.3, index, f"duplicate timer attempt {armed}",
                lambda: self.world.client_attempt(
                    index, self.attempt_for(index, armed), f"timer {armed} fires again"
                ),
            )

    def crash(self, restart_after: float) -> None:
        self.up = False
        self.armed.clear()
        self.world.after(restart_after, -1, "timer worker restarts", self.restart)

    def restart(self) -> None:
        """Re-arm from the stored sessions: the checker's copies, which it folded from every
        event stored so far (each append is checked as it happens), so nothing is read again.
        Only a reconnecting session can need a timer."""
        self.up = True
        checked = self.world.invariants.sessions
        for index, session_id in list(self.world.ids.items()):
            session = checked.get(session_id)
            if session is not None and session.state == "reconnecting":
                self.observe(index, session)


class World:
    def __init__(
        self, app: VoiceSessions, clock: VirtualClock, plans: dict[int, Plan],
        worker: type[TimerWorker] = TimerWorker, deadline_s: float = 10.0,
    ) -> None:
        self.app, self.clock, self.plans = app, clock, plans
        self.deadline_s = deadline_s  # the process manager's attempt watchdog
        self.started_at = clock.now()
        self.queue: list[_Due] = []
        self.seq = itertools.count()
        self.ids: dict[int, UUID] = {}
        self.index_of: dict[UUID, int] = {}
        self.connects: dict[int, list[int]] = {}
        self.down_until: dict[int, datetime] = {}
        self.faults: Counter[str] = Counter()
        self.commands = 0
        self.trace: dict[int, list[TraceStep]] = {}
        self.invariants = Invariants(app)
        self.violations: dict[int, Violation] = {}
        self.worker = worker(self)
        self.final_states: Counter[str] = Counter()

    # ---- the queue -----------------------------------------------------------------------

    def start(self, others: list[Crash]) -> None:
        """Queue every session's start and every crash of the timer worker: the crashes of
        these sessions' plans and `others`, those of the run's other sessions."""
        for index in self.plans:
            self.at(self.started_at + starts_after(index), index, "start",
                    partial(self.start_session, index))
        for crash in sorted([*crashes_of(self.plans.values()), *others], key=lambda c: c.index):
            self.at(self.started_at + crash.after, crash.index, "timer worker crashes",
                    partial(self.crash, crash))

    def crash(self, crash: Crash) -> None:
        if crash.index in self.plans:
            self.faults[Fault.WORKER_CRASH] += 1
        self.worker.crash(crash.restart_after)

    def at(self, when: datetime, index: int, label: str, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, _Due(when, next(self.seq), index, label, action))

    def after(self, seconds: float, index: int, label: str, action: Callable[[], None]) -> None:
        self.at(self.clock.now() + timedelta(seconds=seconds), index, label, action)

    def run(self, process_manager: Paced | None = None, drain: float = 3600.0) -> None:
        """Run the queue; the process manager's worker wakes in between, as `run` would (at
        its next due job, or its next poll when facts may wait), whichever comes first, and
        finishes what falls due within `drain` seconds after the last step."""
        pm = process_manager
        last_step = self.clock.now()
        while True:
            head = self.queue[0].at if self.queue else None
            wake = pm.next_wake() if pm is not None else None
            if wake is not None and (head is None or wake <= head):
                if head is None and wake > last_step + timedelta(seconds=drain):
                    break
                self._process_manager_step(pm, wake)  # type: ignore[arg-type]
                continue
            if not self.queue:
                break
            step = heapq.heappop(self.queue)
            last_step = self.clock.advance_to(step.at)
            step.action()
            if pm is not None:
                pm.appended()

    def _process_manager_step(self, pm: Paced, wake: datetime) -> None:
        """Wake the process manager; check the sessions it appended to (the client follows
        what the watchdog decided)."""
        self.clock.advance_to(wake)
        self.invariants.appended.clear()
        if not pm.wake():
            return
        touched = self.invariants.appended
        t = round((self.clock.now() - self.started_at).total_seconds(), 3)
        for index in sorted(self.index_of[sid] for sid in touched if sid in self.index_of):
            self.trace.setdefault(index, []).append(
                TraceStep(t=t, session=index, step="process manager (watchdog, effects)"))
            self.check(index)

    def command(
        self, index: int, label: str, send: commands.Command | Callable[[], Any],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Send one command for session `index` (or run `send`, which sends it), run the effect
        it leads to (`then`), then check the invariants on its stream."""
        self.trace.setdefault(index, []).append(TraceStep(
            t=round((self.clock.now() - self.started_at).total_seconds(), 3), session=index,
            step=label))
        self.commands += 1
        with suppress(DomainError):  # refused: nothing appended, which the invariants see
            if isinstance(send, commands.Command):
                self.app.handle(send, self.ids[index])
            else:
                send()
        if then is not None:
            then()
        self.check(index)

    def check(self, index: int) -> None:
        """The client follows the session's stored state; the invariants are checked on it."""
        session, new = self.invariants.read(self.ids[index])
        self.worker.observe(index, session)
        # An attempt in flight is watched by the process manager's watchdog, not the client.
        watched = self.worker.up and session.next_retry_at is not None
        armed = self.ids[index] in self.worker.armed if watched else None
        for violation in self.invariants.check(session, new, self.connects[index], armed):
            self.violations.setdefault(index, violation)

    # ---- the client ----------------------------------------------------------------------

    def network_up(self, index: int) -> bool:
        return self.clock.now() >= self.down_until.get(index, self.clock.now())

    def start_session(self, index: int) -> None:
        self.ids[index] = self.app.handle(
            commands.StartSession(room=f"sim-room-{index}", participant=f"sim-user-{index}")
        ).session_id
        self.index_of[self.ids[index]] = index
        self.connects[index] = []
        self.command(index, "start, connect", commands.Connect())
        self.command(index, "connected", commands.MarkConnected())
        self.next_outage(index, 0)

    def next_outage(self, index: int, k: int) -> None:
        plan = self.plans[index]
        if k < len(plan.outages):
            outage = plan.outages[k]
            self.after(outage.starts_after, index, f"outage {k + 1}", lambda: self.outage(index, k))

    def outage(self, index: int, k: int) -> None:
        plan, session_id = self.plans[index], self.ids[index]
        outage = plan.outages[k]
        self.faults[Fault.DROP] += 1
        self.down_until[index] = self.clock.now() + timedelta(seconds=outage.seconds)
        drop = commands.ReportDisconnected(reason="network", actor=Actor.CLIENT)
        if outage.at_once:
            self.faults[Fault.AT_ONCE] += 1
            self.command(index, "agent and client report the drop at once",
                         lambda: self.at_once(session_id))
        else:
            self.command(index, f"client reports drop ({outage.seconds} s)", drop)
        if outage.duplicate_report:
            self.faults[Fault.DUPLICATE] += 1
            self.after(0.05, index, "duplicate disconnect", lambda: self.command(
                index, "client reports the drop again", drop))
        if plan.quality_spell:
            self.faults[Fault.QUALITY] += 1
            participant = f"sim-user-{index}"
            self.command(index, "agent: quality poor",
                         commands.ChangeQuality(participant=participant, quality="poor"))
            self.after(outage.seconds, index, "quality good", lambda: self.command(
                index, "agent: quality good",
                commands.ChangeQuality(participant=participant, quality="good")))
        if outage.end_during:
            self.faults[Fault.CLEANUP_RACE] += 1
            ends = commands.EndSession(reason="user")
            self.after(outage.seconds / 2, index, "user ends", lambda: self.command(
                index, "user ends the session while it reconnects", ends))
        self.after(outage.seconds, index, "network back", lambda: self.next_outage(index, k + 1))

    def at_once(self, session_id: UUID) -> None:
        """The agent's command reads the session, the client's append lands, the agent saves."""
        agent, original = self.app, self.app.save
        client_done = False

        def save(*objs: Any, **kwargs: Any) -> Any:
            nonlocal client_done
            if not client_done:
                client_done = True
                agent.save = original  # type: ignore[method-assign]
                agent.handle(
                    commands.ReportDisconnected(reason="network", actor=Actor.CLIENT), session_id)
            return original(*objs, **kwargs)

        agent.save = save  # type: ignore[method-assign]
        try:
            agent.handle(
                commands.ReportDisconnected(reason="agent saw it", actor=Actor.AGENT), session_id)
        finally:
            agent.save = original  # type: ignore[method-assign]

    def client_attempt(self, index: int, attempt: int, why: str) -> None:
        """The client starts `attempt` and connects only if its start was recorded."""
        session_id = self.ids[index]
        events: list[Any] = []

        def start() -> None:
            events.extend(self.app.handle_with_events(
                commands.StartAttempt.build(attempt=attempt, actor=Actor.SYSTEM), session_id)[1])

        def connect_if_started() -> None:
            if schedule.started(events):
                self.connect(index, attempt)

        self.command(index, f"{why}: attempt {attempt} starts", start, then=connect_if_started)

    def connect(self, index: int, attempt: int) -> None:
        """The effect: room.connect(), whose outcome the client reports later."""
        plan = self.plans[index]
        self.connects[index].append(attempt)
        if attempt in plan.client_crash:
            self.faults[Fault.CLIENT_CRASH] += 1
            return  # the client died mid-attempt: only the watchdog can end it
        delay = plan.connect_latency
        if attempt in plan.late_outcome:
            self.faults[Fault.LATE] += 1
            delay += self.deadline_s + 1  # arrives after the watchdog's deadline
        self.after(delay, index, f"attempt {attempt} outcome",
                   lambda: self.outcome(index, attempt))

    def outcome(self, index: int, attempt: int) -> None:
        plan = self.plans[index]
        send: list[tuple[str, commands.Command]]
        if self.network_up(index):
            send = [("reconnected", commands.ReportReconnected())]
        else:
            failed = commands.FailAttempt(attempt=attempt, error="network unreachable")
            send = [(f"attempt {attempt} failed", failed)]
        if attempt in plan.reorder_outcome:
            self.faults[Fault.REORDER] += 1
            send.append((f"attempt {attempt} starts (reported after its outcome)",
                         commands.StartAttempt(attempt=attempt)))
        for label, action in send:
            self.command(index, label, action)

