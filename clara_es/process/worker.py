"""The timers and the effect runner: act on what the process manager recorded.

One loop, one thread: catch up with the session facts, then do the most urgent thing that is
due (pending effects first, then timers by due time), then catch up again, so a fired timer's
resulting fact clears it before anything else is looked at. Every action goes through a
VoiceSessions command, so the session aggregate stays the only decider: a timer that lost a
race is recorded as SignalIgnored, an outcome reported twice is recorded once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import LocalNotificationLog

from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import Clock
from clara_es.domain.commands import (
    FinishCleanup,
    FinishPipelineRestart,
    RequestCleanup,
    RequestPipelineRestart,
    TimeOutAttempt,
)
from clara_es.process.ports import AudioPipeline, RoomCleaner, SessionRef
from clara_es.process.reactions import LEADER, ProcessManager, Reaction, reactions_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    session_id: UUID
    kind: str
    id: str
    args: dict[str, Any]
    due_at: datetime | None  # None: an effect, due now


def start_worker(
    sessions: VoiceSessions, pipeline: AudioPipeline, cleaner: RoomCleaner, settings: Settings
) -> Worker:
    """The process manager on the sessions' store, following them, and its worker."""
    manager = ProcessManager(reactions_env(sessions.env), settings=settings)
    # Read the sessions' log in sections as large as the manager pulls (the app's own is 10).
    log_ = LocalNotificationLog(sessions.recorder, section_size=manager.pull_section_size)
    manager.follow(LEADER, log_)
    return Worker(sessions, manager, pipeline, cleaner, settings)


class Worker:
    def __init__(
        self,
        sessions: VoiceSessions,
        manager: ProcessManager,
        pipeline: AudioPipeline,
        cleaner: RoomCleaner,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.manager = manager
        self.pipeline = pipeline
        self.cleaner = cleaner
        self.settings = settings
        self.clock: Clock = sessions.clock

    def close(self) -> None:
        self.manager.close()

    # ---- what is due -------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Pending effects first, then timers in due order."""
        effects, timers = [], []
        for reaction in self.manager.busy.values():
            for kind, e in reaction.effects.items():
                effects.append(Job(reaction.id, kind, e["id"], e["args"], None))
            for kind, t in reaction.timers.items():
                timers.append(Job(reaction.id, kind, t["id"], t["args"], t["due_at"]))
        timers.sort(key=lambda j: (j.due_at, str(j.session_id)))
        return effects + timers

    def next_due(self) -> datetime | None:
        dues = [j.due_at or self.clock.now() for j in self.jobs()]
        return min(dues, default=None)

    # ---- running -----------------------------------------------------------------------------

    def run_pending(self) -> int:
        """Catch up and do everything due now. Returns how many jobs ran."""
        done = 0
        failed: set[str] = set()
        while True:
            self.manager.catch_up()
            now = self.clock.now()
            job = next(
                (j for j in self.jobs()
                 if j.id not in failed and (j.due_at is None or j.due_at <= now)),
                None,
            )
            if job is None:
                return done
            try:
                self._run(job)
                done += 1
            except Exception:
                log.exception("event=job_failed session=%s kind=%s id=%s",
                              job.session_id, job.kind, job.id)
                failed.add(job.id)

    def run_until(self, instant: datetime) -> None:
        """Fire everything due up to `instant`, in order, waiting on the clock in between.

        On a VirtualClock the waits are instant: this is how tests and the demo run a
        minute of reactions in milliseconds. Facts appended by another thread are only
        seen at the due times; `run_forever` polls for them.
        """
        while True:
            self.run_pending()
            due = self.next_due()
            if due is None or due > instant:
                break
            self.clock.sleep_until(due)
        self.clock.sleep_until(instant)
        self.run_pending()

    def run_forever(self, stop: threading.Event) -> None:
        """Wall time: poll for new facts and due timers until `stop` is set."""
        while not stop.is_set():
            try:
                self.run_pending()
            except Exception:  # the store may be away for a moment: try again next poll
                log.exception("event=catch_up_failed")
            due = self.next_due()
            wait = self.settings.poll_interval_s
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
            stop.wait(wait)

    # ---- the jobs ----------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        reaction: Reaction = self.manager.busy[job.session_id]
        ref = SessionRef(job.session_id, reaction.room, reaction.participant)
        match (job.kind, job.due_at is None):
            case ("attempt", False):
                log.info("event=attempt_deadline session=%s attempt=%s",
                         job.session_id, job.args["attempt"])
                self.sessions.handle(
                    TimeOutAttempt(attempt=job.args["attempt"], command_id=job.id), job.session_id
                )
            case ("restart", False):
                self.sessions.handle(
                    RequestPipelineRestart(
                        cap=self.settings.pipeline_restart_cap, command_id=job.id
                    ),
                    job.session_id,
                )
            case ("cleanup", False):
                self.sessions.handle(
                    RequestCleanup(reason=job.args["reason"], command_id=job.id), job.session_id
                )
            case ("restart", True):
                self._restart(ref, job)
            case ("cleanup", True):
                self._cleanup(ref, job)

    def _restart(self, ref: SessionRef, job: Job) -> None:
        error: str | None = None
        try:
            self.pipeline.restart(ref)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        log.info("event=pipeline_restart session=%s participant=%s restart=%s outcome=%s%s",
                 ref.session_id, ref.participant, job.args.get("restart"),
                 "failed" if error else "restarted", f" error={error!r}" if error else "")
        self.sessions.handle(
            FinishPipelineRestart(request_id=job.id, error=error), ref.session_id
        )

    def _cleanup(self, ref: SessionRef, job: Job) -> None:
        self.pipeline.stop(ref)
        result = self.cleaner.cleanup(ref, delete_room=bool(job.args.get("delete_room")))
        log.info("event=cleanup session=%s room=%s participant=%s outcome=%s detail=%r",
                 ref.session_id, ref.room, ref.participant, result.outcome, result.detail)
        self.sessions.handle(
            FinishCleanup(request_id=job.id, outcome=result.outcome, detail=result.detail),
            ref.session_id,
        )
