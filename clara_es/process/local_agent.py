"""An agent in the worker's own process: for a pipeline that lives beside the service (the demo,
tests, an embedding that runs its agent in-process).

It behaves like a remote agent (clara_es.agents): it follows the sessions' facts, claims each
requested restart (another agent that claimed it first wins), performs it on its pipeline, and
reports the outcome; on CleanupRequested it stops the session's pipeline. `run` and `serve` have
none: there, restarts are left to the agents that own the pipelines, and a restart nobody
reports fails at its deadline ("no agent answered").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from clara_es.application import VoiceSessions
from clara_es.domain import DomainError
from clara_es.domain.commands import ClaimPipelineRestart, FinishPipelineRestart
from clara_es.domain.events import CleanupRequested, PipelineRestartRequested
from clara_es.process.ports import AudioPipeline, SessionRef

BATCH = 500


class InProcessAgent:
    def __init__(self, sessions: VoiceSessions, pipeline: AudioPipeline, agent_id: str,
                 position: int) -> None:
        self.sessions = sessions
        self.pipeline = pipeline
        self.agent_id = agent_id
        self.position = position  # the last notification looked at

    def poll(self) -> int:
        """Act on every request recorded since the last poll. Returns the facts read."""
        read = 0
        while True:
            facts = self.sessions.log_after(self.position, BATCH)
            for position, fact in facts:
                if isinstance(fact, PipelineRestartRequested):
                    self._restart(fact)
                elif isinstance(fact, CleanupRequested):
                    self.pipeline.stop(self._ref(fact.originator_id))
                self.position = position
            read += len(facts)
            if len(facts) < BATCH:
                return read

    def _restart(self, request: PipelineRestartRequested) -> None:
        sid = request.originator_id
        claim = ClaimPipelineRestart(request_id=request.request_id, agent=self.agent_id)
        try:
            self.sessions.handle(claim, sid)
        except DomainError:
            return  # no longer pending, or another agent has it
        error: str | None = None
        try:
            self.pipeline.restart(self._ref(sid))
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        self.sessions.handle(FinishPipelineRestart(request_id=request.request_id, error=error),
                             sid)

    def _ref(self, session_id: UUID) -> SessionRef:
        return SessionRef.of(self.sessions.session(session_id))


@dataclass
class InMemoryAudioPipeline:
    """A pipeline for the demo and tests: counts restarts, can be told to fail. Never a
    default: a pipeline that reports success without restarting anything would be a lie."""

    failures: int = 0  # restarts that fail before one succeeds
    restarts: dict[UUID, int] = field(default_factory=dict)
    stopped: set[UUID] = field(default_factory=set)

    def restart(self, session: SessionRef) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("audio pipeline did not come back")
        self.restarts[session.session_id] = self.restarts.get(session.session_id, 0) + 1

    def stop(self, session: SessionRef) -> None:
        self.stopped.add(session.session_id)
