"""The process manager's timers, the agent's side of pipeline restarts, and the effect
runner's outcomes."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from clara_es.domain.signal import Actor, Signal

if TYPE_CHECKING:
    from clara_es.domain.session import VoiceSession

from clara_es.domain.commands.base import Attempt, Command, Name, Text

# ---- the process manager's timers and the effect runner's outcomes ------------------------------
# A timer's command has actor `system` and the timer's id as its command id.


class TimeOutAttempt(Command):
    name, reporter = "attempt_timed_out", Actor.SYSTEM
    attempt: Attempt

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.fail_attempt(self.attempt, "timeout", signal)


class RequestPipelineRestart(Command):
    name, reporter = "request_pipeline_restart", Actor.SYSTEM
    cap: int = Field(ge=1, description="restarts per poor-quality episode")

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.request_pipeline_restart(self.cap, signal)


class ClaimPipelineRestart(Command):
    """The agent takes a requested restart on (409 when another agent has it)."""

    name, route, reporter = "pipeline_restart_claimed", "pipeline-restart-claim", Actor.AGENT
    agent_only = True
    request_id: Name
    agent: Name

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.claim_pipeline_restart(self.request_id, self.agent, signal)


class FinishPipelineRestart(Command):
    """The agent's pipeline restarted (no error) or could not (the error says why)."""

    name, route, reporter = "pipeline_restart_finished", "pipeline-restart-finished", Actor.AGENT
    agent_only = True
    request_id: str = Field(min_length=1)
    error: str | None = None

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.finish_pipeline_restart(self.request_id, self.error, signal)


class ReportAgentError(Command):
    """An error of the agent's STT, TTS or LLM, and whether the framework recovers by itself."""

    name, route, reporter = "agent_error", "agent-error", Actor.AGENT
    agent_only = True
    source: Name
    error: Text
    recoverable: bool

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.report_agent_error(self.source, self.error, self.recoverable, signal)


class ReportAgentClosed(Command):
    """The agent's session closed, with livekit-agents' close reason."""

    name, route, reporter = "agent_session_closed", "agent-closed", Actor.AGENT
    agent_only = True
    reason: Name
    error: Annotated[str, Field(max_length=500)] = ""

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.report_agent_closed(self.reason, self.error, signal)


class TimeOutPipelineRestart(Command):
    """The deadline of a restart no agent reported: PipelineRestartFailed "no agent answered"."""

    name, reporter = "pipeline_restart_timed_out", Actor.SYSTEM
    request_id: str = Field(min_length=1)

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.time_out_pipeline_restart(self.request_id, signal)


class EndIdleSession(Command):
    """Nobody reported anything on the session for the idle timeout: it ends."""

    name, reporter = "idle_timed_out", Actor.SYSTEM
    idle_s: float = Field(gt=0)

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.end_idle(timedelta(seconds=self.idle_s), signal)


class RequestCleanup(Command):
    name, reporter = "request_cleanup", Actor.SYSTEM
    reason: str

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.request_cleanup(self.reason, signal)


class FinishCleanup(Command):
    name, reporter = "cleanup_finished", Actor.SYSTEM
    request_id: str = Field(min_length=1)
    outcome: Literal["cleaned", "failed", "skipped"]
    detail: str

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.finish_cleanup(self.request_id, self.outcome, self.detail, signal)
