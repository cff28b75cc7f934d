"""The command catalogue: every signal a session can receive, validated once, decided once.

A command is what a reporter (the client, the agent, LiveKit, the process manager) tells one
session. Each type names the signal it is recorded as (`name`, stored in every event's cause and
never renamed), the HTTP route that sends it (`route`, if any), who reports it by default, and
the session rule that decides it. Every entry point builds one of these and hands it to
`VoiceSessions.handle`; `replay --verify` rebuilds the same command from a recorded signal.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from clara_es.domain.errors import DomainError
from clara_es.domain.policy import BackoffPolicy
from clara_es.domain.signal import Actor, Signal
from clara_es.domain.state import AgentConnection, Quality

if TYPE_CHECKING:
    from clara_es.domain.session import VoiceSession


class InvalidCommand(DomainError):
    """The command's arguments are not valid: nothing was appended."""


class UnknownSignal(DomainError):
    """A recorded signal that no command of the catalogue can re-run."""


class IdempotencyConflict(InvalidCommand):
    """An idempotency key already used for a different command: nothing was appended."""


# Names and free text end up in views and logs: one line, bounded.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
Attempt = Annotated[int, Field(ge=1, le=100, description="the reconnect attempt, from 1")]
Key = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class Command(BaseModel):
    """One signal to one session. `actor` and `command_id` say who sent it and as what.

    `occurred_at` is when the fact happened on the reporter's clock (the service's time when
    absent); `idempotency_key` makes a repeat answer the first answer and append nothing.
    Neither is one of the command's arguments (`args`): they are recorded in the cause.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    route: ClassVar[str | None] = None
    reporter: ClassVar[Actor] = Actor.CLIENT
    META: ClassVar[frozenset[str]] = frozenset(
        {"actor", "command_id", "occurred_at", "idempotency_key"}
    )
    IN_BODY: ClassVar[frozenset[str]] = frozenset({"occurred_at"})  # of META, sent in a body

    actor: Actor | None = Field(None, description="who reports it; the route's role by default")
    command_id: str | None = Field(
        None, description="the id of the timer or request that sent it (kept across retries)"
    )
    occurred_at: AwareDatetime | None = Field(
        None, description="when it happened, on the reporter's clock (default: when received)"
    )
    idempotency_key: Key | None = Field(
        None, description="a repeat with the same key and body appends nothing"
    )

    @classmethod
    def build(cls, **fields: Any) -> Any:
        """The command, or InvalidCommand naming what is wrong (for callers without pydantic)."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise InvalidCommand(_first_error(cls.name, exc)) from None

    @property
    def by(self) -> Actor:
        return self.actor or self.reporter

    def args(self) -> dict[str, Any]:
        """The arguments recorded in the cause of every event the command leads to."""
        return self.model_dump(mode="json", exclude=set(self.META))

    def digest(self) -> str:
        """What was sent under an idempotency key: the same key must come with the same."""
        sent = self.model_dump(mode="json", exclude={"actor", "command_id", "idempotency_key"})
        text = json.dumps([self.name, sent], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        raise NotImplementedError


class StartSession(Command):
    name = "start"
    room: Name
    participant: Name
    policy: BackoffPolicy | None = Field(None, description="backoff (default: the service's)")


class Connect(Command):
    name, route = "connect", "connect"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.connect(signal)


class MarkConnected(Command):
    name, route = "connected", "connected"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.mark_connected(signal)


class ReportDisconnected(Command):
    name, route = "disconnected", "disconnected"
    reason: Text = "unknown"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.disconnect(self.reason, signal)


class StartAttempt(Command):
    name, route = "attempt_started", "attempt-started"
    attempt: Attempt

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.start_attempt(self.attempt, signal)


class FailAttempt(Command):
    name, route = "attempt_failed", "attempt-failed"
    attempt: Attempt
    error: Text

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.fail_attempt(self.attempt, self.error, signal)


class ReportReconnected(Command):
    name, route = "reconnected", "reconnected"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.reconnect(signal)


class ChangeQuality(Command):
    name, route, reporter = "quality_changed", "quality", Actor.AGENT
    participant: Name
    quality: Quality

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.change_quality(self.participant, self.quality, signal)


class EndSession(Command):
    name, route = "end", "end"
    reason: Text = "user"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.end(self.reason, signal)


# ---- what LiveKit reports, through the agent's room or the client's ----------------------------


class StartResume(Command):
    """The client's room reports `reconnecting`: the SDK resumes by itself first."""

    name, route = "resume_started", "resume-started"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.start_resume(signal)


class ConfirmPoorQuality(Command):
    """Quality stayed poor for the window: from the agent's monitor, or the service's timer
    for the spell that began at `since` (raw quality reports over HTTP)."""

    name, reporter = "quality_poor_confirmed", Actor.AGENT
    participant: Name
    since: datetime | None = None

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.confirm_poor_quality(self.participant, signal, self.since)


class ChangeAgentConnection(Command):
    name, reporter = "agent_connection_changed", Actor.AGENT
    connection: AgentConnection
    reason: str = ""

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.change_agent_connection(self.connection, self.reason, signal)


class Departure(BaseModel):
    """Why the participant left. `ends_session` says whether that ends the session (the leave
    reasons of clara_es.adapters.livekit.leave_reasons); signals recorded before it existed
    ended the session only when the user left (`user_initiated`)."""

    reason: str = "unknown"
    user_initiated: bool = False
    ends_session: bool | None = None

    @property
    def ends(self) -> bool:
        return self.user_initiated if self.ends_session is None else self.ends_session


class ReportParticipantLeft(Command, Departure):
    name, reporter = "participant_left", Actor.AGENT

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.report_participant_left(self.reason, self.ends, signal)


class ReportParticipantJoined(Command):
    name, reporter = "participant_joined", Actor.AGENT

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.report_participant_joined(signal)


class FinishRoom(Command):
    name, reporter = "room_finished", Actor.SYSTEM

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.finish_room(signal)


# ---- LiveKit's webhooks: each delivery id is decided at most once per session --------------------


class Webhook(Command):
    reporter = Actor.SYSTEM
    kind: ClassVar[str]
    webhook_id: str
    room: str = ""
    participant: str | None = None

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        if session.receive_webhook(self.webhook_id, self.kind, signal):
            self.then(session, signal)

    def then(self, session: VoiceSession, signal: Signal) -> None:
        raise NotImplementedError


class WebhookParticipantJoined(Webhook):
    kind = "participant_joined"
    name = f"webhook {kind}"

    def then(self, session: VoiceSession, signal: Signal) -> None:
        session.report_participant_joined(signal)


class WebhookParticipantLeft(Webhook, Departure):
    kind = "participant_left"
    name = f"webhook {kind}"

    def then(self, session: VoiceSession, signal: Signal) -> None:
        session.report_participant_left(self.reason, self.ends, signal)


class WebhookConnectionAborted(Webhook):
    kind = "participant_connection_aborted"
    name = f"webhook {kind}"

    def then(self, session: VoiceSession, signal: Signal) -> None:
        session.report_participant_left("connection aborted", False, signal)


class WebhookRoomFinished(Webhook):
    kind = "room_finished"
    name = f"webhook {kind}"

    def then(self, session: VoiceSession, signal: Signal) -> None:
        session.finish_room(signal)


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
    request_id: Name
    agent: Name

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.claim_pipeline_restart(self.request_id, self.agent, signal)


class FinishPipelineRestart(Command):
    """The agent's pipeline restarted (no error) or could not (the error says why)."""

    name, route, reporter = "pipeline_restart_finished", "pipeline-restart-finished", Actor.AGENT
    request_id: str = Field(min_length=1)
    error: str | None = None

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.finish_pipeline_restart(self.request_id, self.error, signal)


class ReportAgentError(Command):
    """An error of the agent's STT, TTS or LLM, and whether the framework recovers by itself."""

    name, route, reporter = "agent_error", "agent-error", Actor.AGENT
    source: Name
    error: Text
    recoverable: bool

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.report_agent_error(self.source, self.error, self.recoverable, signal)


class ReportAgentClosed(Command):
    """The agent's session closed, with livekit-agents' close reason."""

    name, route, reporter = "agent_session_closed", "agent-closed", Actor.AGENT
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


def _catalogue() -> dict[str, type[Command]]:
    found: dict[str, type[Command]] = {}
    pending = list(Command.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "name" in cls.__dict__:
            found[cls.name] = cls
    return found


CATALOGUE: dict[str, type[Command]] = _catalogue()
ROUTES: dict[str, type[Command]] = {c.route: c for c in CATALOGUE.values() if c.route}


def command_for(signal: Signal) -> Command:
    """The command a recorded signal was, rebuilt from its name and arguments."""
    cls = CATALOGUE.get(signal.name)
    if cls is None:
        raise UnknownSignal(f"no decision is known for signal {signal.name!r}")
    try:
        return cls.model_validate(signal.args)
    except ValidationError as exc:
        raise UnknownSignal(
            f"signal {signal.name!r} was recorded without a valid argument: "
            f"{_first_error(signal.name, exc)}"
        ) from None


def _first_error(name: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or name
    return f"{name}: {where}: {error['msg']}"
