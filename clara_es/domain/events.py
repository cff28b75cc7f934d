"""Every fact a voice session records, as an explicit class, and what each does to the session.

Each event carries when it happened (`timestamp`), who reported it (`actor`: client, agent,
system) and its `cause` (the signal's id, name, arguments and the version it read). Whatever
reacts to facts (the process manager, the views, races, invariants) dispatches on these classes.

Stored events keep the topics they were first written with (`VoiceSession.<Name>` in
clara_es.domain.session), so stores written before these classes existed read back unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from clara_es.domain.state import (
    BAD_QUALITY,
    GOOD_QUALITY,
    AgentConnection,
    ConnectionState,
    Quality,
    SessionState,
)

STORED_TOPIC_PREFIX = "clara_es.domain.session:VoiceSession."


class SessionEvent(Aggregate.Event):
    """One fact of a session's stream."""

    actor: str
    cause: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TOPIC = STORED_TOPIC_PREFIX + cls.__name__
        register_topic(cls.TOPIC, cls)

    @property
    def recorded_at(self) -> datetime:
        """When the service learned the fact: later than `timestamp` (when it happened) for a
        fact reported late; kept in the cause only where the two differ."""
        at = self.cause.get("recorded_at")
        return datetime.fromisoformat(at) if at else self.timestamp

    def apply(self, aggregate: Any) -> None:
        self.apply_to(aggregate)
        if self.actor != "system":
            aggregate.last_activity_at = self.timestamp
        key = self.cause.get("idempotency_key")
        if key is not None:
            aggregate.remember_request(key, self.cause.get("digest"), self.originator_version)

    def apply_to(self, session: SessionState) -> None:
        """What the fact changes in the session; most facts change nothing but the version."""


# ---- the session starts and connects -----------------------------------------------------


class SessionStarted(SessionEvent, Aggregate.Created):
    room: str
    participant: str
    policy: dict[str, Any]

    def apply_to(self, session: SessionState) -> None:
        session.room = self.room
        session.participant = self.participant
        session.policy = self.policy
        session.state = ConnectionState.IDLE
        session.quality = Quality.UNKNOWN
        session.attempt = 0
        session.attempt_in_flight = False
        session.next_retry_at = None
        session.outage_started_at = None


class Connecting(SessionEvent):
    def apply_to(self, session: SessionState) -> None:
        session.state = ConnectionState.CONNECTING


class Connected(SessionEvent):
    def apply_to(self, session: SessionState) -> None:
        session.state = ConnectionState.CONNECTED


# ---- the network fails and recovers ------------------------------------------------------


class ResumeStarted(SessionEvent):
    """The SDK resumes by itself (room `reconnecting`); no attempt of ours is scheduled."""

    def apply_to(self, session: SessionState) -> None:
        session.state = ConnectionState.RECONNECTING
        session.attempt = 0
        session.next_retry_at = None
        session.outage_started_at = self.timestamp


class Disconnected(SessionEvent):
    reason: str

    def apply_to(self, session: SessionState) -> None:
        session.state = ConnectionState.RECONNECTING
        # After the SDK's own resume gave up, the outage began when the resume started.
        session.outage_started_at = session.outage_started_at or self.timestamp


class ReconnectScheduled(SessionEvent):
    attempt: int
    delay_ms: int
    due_at: datetime

    def apply_to(self, session: SessionState) -> None:
        session.state = ConnectionState.RECONNECTING
        session.attempt = self.attempt
        session.attempt_in_flight = False
        session.next_retry_at = self.due_at


class ReconnectAttempted(SessionEvent):
    attempt: int

    def apply_to(self, session: SessionState) -> None:
        session.attempt_in_flight = True
        session.next_retry_at = None


class ReconnectAttemptFailed(SessionEvent):
    attempt: int
    error: str

    def apply_to(self, session: SessionState) -> None:
        session.attempt_in_flight = False


class Reconnected(SessionEvent):
    attempt: int
    outage_ms: int

    def apply_to(self, session: SessionState) -> None:
        session.leave_schedule(ConnectionState.CONNECTED)
        session.attempt = 0
        session.outage_started_at = None


class Failed(SessionEvent):
    reason: str
    attempts: int

    def apply_to(self, session: SessionState) -> None:
        session.leave_schedule(ConnectionState.FAILED)


class SessionEnded(SessionEvent):
    reason: str

    def apply_to(self, session: SessionState) -> None:
        session.leave_schedule(ConnectionState.ENDED)


class SignalIgnored(SessionEvent):
    """A late, duplicate or superseded signal, and why it no longer applies."""

    signal: str
    reason: str


# ---- what LiveKit reports: the agent's connection, webhooks -------------------------------


class AgentConnectionChanged(SessionEvent):
    connection: str
    reason: str

    def apply_to(self, session: SessionState) -> None:
        session.agent_connection = AgentConnection(self.connection)


class WebhookReceived(SessionEvent):
    webhook_id: str
    kind: str

    def apply_to(self, session: SessionState) -> None:
        kept = session.WEBHOOK_IDS_KEPT
        session.webhook_ids = (*session.webhook_ids, self.webhook_id)[-kept:]


# ---- quality and the agent's audio pipeline -----------------------------------------------


class QualityChanged(SessionEvent):
    participant: str
    quality: str
    previous: str

    def apply_to(self, session: SessionState) -> None:
        was_bad = session.quality in BAD_QUALITY
        session.quality = Quality(self.quality)
        if session.quality not in BAD_QUALITY:
            session.poor_confirmed = False
            session.poor_since = None
        elif not was_bad:
            session.poor_since = self.timestamp
        if session.quality in GOOD_QUALITY:
            session.reconnection_attempts = 0  # the poor-quality episode is over


class QualityPoor(SessionEvent):
    participant: str
    quality: str

    def apply_to(self, session: SessionState) -> None:
        session.poor_confirmed = True


class PipelineRestartRequested(SessionEvent):
    request_id: str
    restart: int
    cap: int

    def apply_to(self, session: SessionState) -> None:
        session.restart_request = self.request_id
        session.reconnection_attempts = self.restart


class PipelineRestartClaimed(SessionEvent):
    """One agent took the restart on: no other agent performs it."""

    request_id: str
    agent: str

    def apply_to(self, session: SessionState) -> None:
        session.restart_claimed_by = self.agent


class PipelineRestarted(SessionEvent):
    request_id: str
    restart: int

    def apply_to(self, session: SessionState) -> None:
        session.restart_request = None
        session.restart_claimed_by = None


class PipelineRestartFailed(SessionEvent):
    request_id: str
    restart: int
    error: str

    def apply_to(self, session: SessionState) -> None:
        session.restart_request = None
        session.restart_claimed_by = None


class AgentErrorReported(SessionEvent):
    """The agent's session reported an error of its STT, TTS or LLM (livekit-agents'
    `error` event); `recoverable` says whether the framework retries by itself."""

    source: str
    error: str
    recoverable: bool


class AgentSessionClosed(SessionEvent):
    """The agent's session closed (livekit-agents' `close` event) and why."""

    reason: str
    error: str


# ---- cleanup of the room and the participant ----------------------------------------------


class CleanupRequested(SessionEvent):
    request_id: str
    reason: str
    room: str
    participant: str

    def apply_to(self, session: SessionState) -> None:
        session.cleanup_request = self.request_id


class SessionCleanedUp(SessionEvent):
    request_id: str
    removed: str

    def apply_to(self, session: SessionState) -> None:
        session.cleanup_outcome = "cleaned"


class CleanupFailed(SessionEvent):
    request_id: str
    error: str

    def apply_to(self, session: SessionState) -> None:
        session.cleanup_outcome = "failed"


class CleanupSkipped(SessionEvent):
    request_id: str
    reason: str

    def apply_to(self, session: SessionState) -> None:
        session.cleanup_outcome = "skipped"


CLEANUP_OUTCOMES = (SessionCleanedUp, CleanupFailed, CleanupSkipped)
RESTART_OUTCOMES = (PipelineRestarted, PipelineRestartFailed)
