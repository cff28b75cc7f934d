"""The command catalogue: every signal a session can receive, validated once, decided once.

A command is what a reporter (the client, the agent, LiveKit, the process manager) tells one
session. Each type names the signal it is recorded as (`name`, stored in every event's cause and
never renamed), the HTTP route that sends it (`route`, if any), who reports it by default, and
the session rule that decides it. Every entry point builds one of these and hands it to
`VoiceSessions.handle`; `replay --verify` rebuilds the same command from a recorded signal.
"""

from __future__ import annotations

from pydantic import ValidationError

from clara_es.domain.commands.base import (
    Attempt,
    Command,
    IdempotencyConflict,
    Instant,
    InvalidCommand,
    Key,
    LocalInstant,
    Name,
    Text,
    UnknownSignal,
    _first_error,
)
from clara_es.domain.commands.client import (
    ChangeQuality,
    Connect,
    EndSession,
    FailAttempt,
    MarkConnected,
    ReportDisconnected,
    ReportReconnected,
    StartAttempt,
    StartSession,
)
from clara_es.domain.commands.livekit import (
    ChangeAgentConnection,
    ConfirmPoorQuality,
    Departure,
    FinishRoom,
    ReportParticipantJoined,
    ReportParticipantLeft,
    StartResume,
    Webhook,
    WebhookConnectionAborted,
    WebhookParticipantJoined,
    WebhookParticipantLeft,
    WebhookRoomFinished,
)
from clara_es.domain.commands.process import (
    ClaimPipelineRestart,
    EndIdleSession,
    FinishCleanup,
    FinishPipelineRestart,
    ReportAgentClosed,
    ReportAgentError,
    RequestCleanup,
    RequestPipelineRestart,
    TimeOutAttempt,
    TimeOutPipelineRestart,
)
from clara_es.domain.signal import Signal


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


__all__ = [
    "CATALOGUE",
    "ROUTES",
    "Attempt",
    "ChangeAgentConnection",
    "ChangeQuality",
    "ClaimPipelineRestart",
    "Command",
    "ConfirmPoorQuality",
    "Connect",
    "Departure",
    "EndIdleSession",
    "EndSession",
    "FailAttempt",
    "FinishCleanup",
    "FinishPipelineRestart",
    "FinishRoom",
    "IdempotencyConflict",
    "Instant",
    "InvalidCommand",
    "Key",
    "LocalInstant",
    "MarkConnected",
    "Name",
    "ReportAgentClosed",
    "ReportAgentError",
    "ReportDisconnected",
    "ReportParticipantJoined",
    "ReportParticipantLeft",
    "ReportReconnected",
    "RequestCleanup",
    "RequestPipelineRestart",
    "StartAttempt",
    "StartResume",
    "StartSession",
    "Text",
    "TimeOutAttempt",
    "TimeOutPipelineRestart",
    "UnknownSignal",
    "Webhook",
    "WebhookConnectionAborted",
    "WebhookParticipantJoined",
    "WebhookParticipantLeft",
    "WebhookRoomFinished",
    "command_for",
]
