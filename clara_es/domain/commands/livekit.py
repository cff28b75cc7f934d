"""What LiveKit reports: the agent's room, the client's room, and webhooks (each delivery
id at most once per session)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from clara_es.domain.signal import Actor, Signal
from clara_es.domain.state import AgentConnection

if TYPE_CHECKING:
    from clara_es.domain.session import VoiceSession

from clara_es.domain.commands.base import Command, Name

# ---- what LiveKit reports, through the agent's room or the client's ----------------------------


class StartResume(Command):
    """The client's room reports `reconnecting`: the SDK resumes by itself first."""

    name, route = "resume_started", "resume-started"

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        session.start_resume(signal)


class ConfirmPoorQuality(Command):
    """Quality stayed poor for the window: the process manager's timer for the spell that
    began at `since`, whoever reported the quality (the agent's monitor, HTTP)."""

    name, reporter = "quality_poor_confirmed", Actor.SYSTEM
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
