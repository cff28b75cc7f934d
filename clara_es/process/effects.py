"""The effects: what a pending request does outside the store, and the outcome it reports.

Each kind of effect has a port (ports.py) and a handler here that calls the port and reports
the outcome to the session as a command. Ports are plugged in by the composition root: the
agent's pipeline may be in this process or remote, LiveKit's RoomService or a stand-in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from clara_es.application import VoiceSessions
from clara_es.domain.commands import Command, FinishCleanup, FinishPipelineRestart
from clara_es.process.decisions import PIPELINE_RESTART, ROOM_CLEANUP
from clara_es.process.due import Job
from clara_es.process.ports import AudioPipeline, RoomCleaner, SessionRef

log = logging.getLogger("clara_es.process.worker")

Handler = Callable[[SessionRef, Job], Command]


class Effects:
    def __init__(self, sessions: VoiceSessions, pipeline: AudioPipeline,
                 cleaner: RoomCleaner) -> None:
        self.sessions = sessions
        self.pipeline = pipeline
        self.cleaner = cleaner
        self.handlers: dict[str, Handler] = {
            PIPELINE_RESTART: self.restart, ROOM_CLEANUP: self.cleanup,
        }

    def run(self, job: Job) -> None:
        """Carry out the effect and record its outcome on the session."""
        session = self.sessions.session(job.session_id)
        ref = SessionRef(job.session_id, session.room, session.participant)
        outcome = self.handlers[job.kind](ref, job)
        self.sessions.handle(outcome, job.session_id)

    def restart(self, ref: SessionRef, job: Job) -> Command:
        error: str | None = None
        try:
            self.pipeline.restart(ref)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        log.info("event=pipeline_restart session=%s participant=%s restart=%s outcome=%s%s",
                 ref.session_id, ref.participant, job.args.get("restart"),
                 "failed" if error else "restarted", f" error={error!r}" if error else "")
        return FinishPipelineRestart(request_id=job.id, error=error)

    def cleanup(self, ref: SessionRef, job: Job) -> Command:
        self.pipeline.stop(ref)
        result = self.cleaner.cleanup(ref, delete_room=bool(job.args.get("delete_room")))
        log.info("event=cleanup session=%s room=%s participant=%s outcome=%s detail=%r",
                 ref.session_id, ref.room, ref.participant, result.outcome, result.detail)
        return FinishCleanup(request_id=job.id, outcome=result.outcome, detail=result.detail)
