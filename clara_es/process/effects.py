"""The effect: what a pending cleanup does outside the store, and the outcome it reports.

The room cleaner is plugged in by the composition root: LiveKit's RoomService, or, with no
LiveKit configured, a cleaner that records the cleanup as skipped.
"""

from __future__ import annotations

import logging

from clara_es.application import VoiceSessions
from clara_es.domain.commands import FinishCleanup
from clara_es.process.due import Job
from clara_es.process.ports import RoomCleaner, SessionRef

log = logging.getLogger("clara_es.process.worker")


class Effects:
    def __init__(self, sessions: VoiceSessions, cleaner: RoomCleaner) -> None:
        self.sessions = sessions
        self.cleaner = cleaner

    def run(self, job: Job) -> None:
        """Remove the session's participant (and room), and record the outcome."""
        ref = SessionRef.of(self.sessions.session(job.session_id))
        result = self.cleaner.cleanup(ref, delete_room=bool(job.args.get("delete_room")))
        log.info("event=cleanup session=%s room=%s participant=%s outcome=%s detail=%r",
                 ref.session_id, ref.room, ref.participant, result.outcome, result.detail)
        self.sessions.handle(
            FinishCleanup(request_id=job.id, outcome=result.outcome, detail=result.detail),
            job.session_id,
        )
