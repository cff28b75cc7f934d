"""The timers and the effect runner: claim the due rows and act on them.

Every action goes through a VoiceSessions command, so the session aggregate stays the only
decider: a timer that lost a race is recorded as SignalIgnored, an outcome reported twice is
recorded once. Any number of workers, in any number of processes, share one due-work table:
each job is leased to one of them, and taken over by another when its lease ends unfinished.

On wall time (`run_forever`) timers are fired by a few threads, all those due in one pass,
and effects run in a pool of their own, so a slow RoomService call holds only its own job.
On a virtual clock (`run_until`, tests, the demo, the simulator) everything runs inline,
in due order, so a seed replays exactly.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

import sqlalchemy as sa
from eventsourcing.persistence import PersistenceError

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import Clock
from clara_es.domain.commands import (
    Command,
    ConfirmPoorQuality,
    EndIdleSession,
    RequestCleanup,
    RequestPipelineRestart,
    TimeOutAttempt,
    TimeOutPipelineRestart,
)
from clara_es.process.decisions import (
    ATTEMPT,
    CLEANUP,
    EFFECTS,
    IDLE,
    PIPELINE_RESTART,
    POOR_WINDOW,
    RESTART,
    TIMERS,
)
from clara_es.process.due import BATCH, DueWork, Job, ProcessManager, worker_id
from clara_es.process.effects import Effects
from clara_es.process.local_agent import InProcessAgent
from clara_es.process.ports import AudioPipeline, RoomCleaner

log = logging.getLogger(__name__)


def start_worker(
    sessions: VoiceSessions, cleaner: RoomCleaner, settings: Settings,
    store: Store | None = None, pipeline: AudioPipeline | None = None,
) -> Worker:
    """The process manager on the sessions' store (its tables migrated), and a worker. With a
    `pipeline`, an agent in this process performs the restarts (the demo, tests); without one
    they are left to the agents that own the pipelines."""
    from clara_es.process.engine import due_engine
    from projections.db import upgrade

    store = store or Store.from_eventsourcing_env(sessions.env)
    upgrade(store)
    engine = due_engine(store)
    manager = ProcessManager(sessions, engine, settings)
    worker = Worker(sessions, manager, Effects(sessions, cleaner), settings)
    if pipeline is not None:
        worker.agent = InProcessAgent(sessions, pipeline, f"in-process:{worker.due.owner}",
                                      manager.position())
    return worker


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class StoreOutage:
    """Consecutive failures to reach the store in the worker's loop: the wait before the next
    try doubles (up to MOST_S), and the log gets a line at the 1st, 2nd, 4th, 8th... failure and
    one when the store is back, not a line per poll."""

    MOST_S = 10.0

    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s
        self.failures = 0
        self.since = 0.0

    def failed(self, exc: BaseException) -> None:
        if not self.failures:
            self.since = time.monotonic()
        self.failures += 1
        if self.failures & (self.failures - 1) == 0:
            log.warning("event=store_unreachable failures=%d for_s=%.1f next_try_s=%.1f "
                        "error=%r", self.failures, time.monotonic() - self.since,
                        self.delay(), one_line(exc))

    def recovered(self) -> None:
        if self.failures:
            log.info("event=store_reachable failures=%d for_s=%.1f", self.failures,
                     time.monotonic() - self.since)
            self.failures = 0

    def delay(self) -> float:
        return min(self.poll_s * 2 ** self.failures, self.MOST_S)


class Worker:
    def __init__(
        self, sessions: VoiceSessions, manager: ProcessManager, effects: Effects,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.manager = manager
        self.effects = effects
        self.settings = settings
        self.clock: Clock = sessions.clock
        self.due = DueWork(manager.engine, worker_id(), timedelta(seconds=settings.lease_s))
        self.agent: InProcessAgent | None = None

    @property
    def cleaner(self) -> RoomCleaner:
        return self.effects.cleaner

    def close(self) -> None:
        self.manager.close()

    def next_due(self) -> datetime | None:
        return self.due.next_due()

    # ---- on a virtual clock: inline, in due order -------------------------------------------

    def run_pending(self, nothing_due: bool = False) -> int:
        """Catch up and do everything due now, inline. Returns how many jobs ran.

        `nothing_due`: the caller knows no row was claimable now before this catch-up (it read
        `next_due` after the last change, and only this worker writes the rows), so only the
        rows the catch-up puts can be due: no claim when it puts none due now."""
        done, everything_claimed = 0, nothing_due
        while True:
            self.manager.earliest_due = None
            self.manager.catch_up()
            if self.agent is not None:
                self.agent.poll()
                self.manager.catch_up()
            now = self.clock.now()
            put = self.manager.earliest_due
            if everything_claimed and (put is None or put > now):
                # What was due ran; the facts it led to put no row due yet (the clock has
                # not moved, a job that failed is retried later): nothing to claim.
                return done
            jobs = self.due.claim(now, TIMERS | EFFECTS, BATCH)
            if not jobs:
                return done
            self.due.done(*[job for job in jobs if self._attempt(job)])
            done += len(jobs)
            everything_claimed = len(jobs) < BATCH

    def run_until(self, instant: datetime) -> None:
        """Fire everything due up to `instant`, in order, waiting on the clock in between.

        On a VirtualClock the waits are instant: this is how tests and the demo run a
        minute of reactions in milliseconds.
        """
        while True:
            self.run_pending()
            due = self.next_due()
            if due is None or due > instant:
                break
            self.clock.sleep_until(due)
        self.clock.sleep_until(instant)
        self.run_pending()

    # ---- on wall time: timers in a few threads, effects in a pool ---------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Poll for new facts and due jobs until `stop` is set. Jobs run in the pools while
        this loop keeps their leases and looks for more."""
        timers = ThreadPoolExecutor(self.settings.timer_threads, thread_name_prefix="timer")
        effects = ThreadPoolExecutor(self.settings.effect_threads, thread_name_prefix="effect")
        fired: dict[Future[None], list[Job]] = {}
        running: dict[Future[None], Job] = {}
        agent: Future[int] | None = None
        outage = StoreOutage(self.settings.poll_interval_s)
        renewed = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    self.manager.catch_up()
                    if self.agent is not None and (agent is None or agent.done()):
                        agent = effects.submit(self.agent.poll)
                    now = self.clock.now()
                    if not fired:  # the whole previous batch of timers is done
                        for group in self._groups(self.due.claim(now, TIMERS, BATCH)):
                            fired[timers.submit(self.fire, group)] = group
                    free = self.settings.effect_threads - len(running)
                    for job in self.due.claim(now, EFFECTS, free) if free > 0 else []:
                        running[effects.submit(self.execute, job)] = job
                    if time.monotonic() - renewed > self.settings.lease_s / 3:
                        self.due.renew([*(j for g in fired.values() for j in g),
                                        *running.values()], self.clock.now())
                        renewed = time.monotonic()
                    outage.recovered()
                except (sa.exc.SQLAlchemyError, PersistenceError, OSError) as exc:
                    outage.failed(exc)  # the store may be away for a while: try again later
                if fired:  # back as soon as the batch is done, to claim the next one
                    wait(list(fired), timeout=self.settings.poll_interval_s)
                else:
                    stop.wait(outage.delay() if outage.failures else self._wait())
                fired = {f: j for f, j in fired.items() if not f.done()}
                running = {f: j for f, j in running.items() if not f.done()}
        finally:
            timers.shutdown(wait=True, cancel_futures=True)
            effects.shutdown(wait=True, cancel_futures=True)

    def _wait(self) -> float:
        wait = self.settings.poll_interval_s
        try:
            due = self.next_due()
        except sa.exc.SQLAlchemyError:
            return wait
        if due is not None:
            wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
        return wait

    def _groups(self, jobs: list[Job]) -> list[list[Job]]:
        """A claimed batch of timers split among the timer threads, in due order."""
        size = max(1, -(-len(jobs) // self.settings.timer_threads))
        return [jobs[i:i + size] for i in range(0, len(jobs), size)]

    def fire(self, jobs: list[Job]) -> None:
        """Fire timers due together: their commands saved in one transaction (a lost race:
        each alone), their rows finished in one statement; one that raised is tried again
        later, by any worker."""
        orders, sent = [], []
        for job in jobs:
            try:
                orders.append((self._timer_command(job), job.session_id))
                sent.append(job)
            except Exception as exc:  # a row this worker cannot read: retried, not lost
                self._failed(job, exc)
        done = []
        for job, error in zip(sent, self.sessions.handle_all(orders), strict=True):
            if error is None:
                done.append(job)
            else:
                self._failed(job, error)
        self.due.done(*done)

    # ---- one job -----------------------------------------------------------------------------

    def execute(self, job: Job) -> None:
        """Run one claimed job; a job that raised is tried again later, by any worker."""
        if self._attempt(job):
            self.due.done(job)

    def _attempt(self, job: Job) -> bool:
        """Run the job; False (and a retry set) if it raised."""
        try:
            self._run(job)
        except Exception as exc:
            self._failed(job, exc)
            return False
        return True

    def _failed(self, job: Job, exc: Exception) -> None:
        delay = min(2.0 ** job.tries, self.settings.lease_s)
        # the first failure with its traceback, then one line a try
        log.warning("event=job_failed session=%s kind=%s id=%s tries=%s next_try_s=%s "
                    "error=%r", job.session_id, job.kind, job.id, job.tries, delay,
                    one_line(exc), exc_info=(type(exc), exc, exc.__traceback__)
                    if job.tries == 1 else None)
        self.due.retry_at(job, self.clock.now() + timedelta(seconds=delay))

    def _run(self, job: Job) -> None:
        if job.kind in EFFECTS:
            self.effects.run(job)
        else:
            self.sessions.handle(self._timer_command(job), job.session_id)

    def _timer_command(self, job: Job) -> Command:
        """What a due timer tells its session; the timer's id is the command's id."""
        args, cid = job.args, job.id
        if job.kind == ATTEMPT:
            log.info("event=attempt_deadline session=%s attempt=%s", job.session_id,
                     args["attempt"])
            return TimeOutAttempt(attempt=args["attempt"], command_id=cid)
        if job.kind == POOR_WINDOW:
            return ConfirmPoorQuality(participant=args["participant"], command_id=cid,
                                      since=datetime.fromisoformat(args["since"]))
        if job.kind == RESTART:
            return RequestPipelineRestart(cap=self.settings.pipeline_restart_cap, command_id=cid)
        if job.kind == PIPELINE_RESTART:
            # rows written before restarts had deadlines are keyed by the request's id
            request_id = args.get("request_id", cid)
            log.info("event=pipeline_restart_deadline session=%s request=%s",
                     job.session_id, request_id)
            return TimeOutPipelineRestart(request_id=request_id, command_id=cid)
        if job.kind == IDLE:
            log.info("event=idle_timeout session=%s idle_s=%s", job.session_id, args["idle_s"])
            return EndIdleSession(idle_s=args["idle_s"], command_id=cid)
        if job.kind == CLEANUP:
            return RequestCleanup(reason=args["reason"], command_id=cid)
        raise ValueError(f"unknown kind of due work {job.kind!r}")
