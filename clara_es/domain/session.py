"""The voice session: one event stream per session, and the connection state machine.

    idle --connect--> connecting --connected--> connected
    connecting | connected --disconnected--> reconnecting (ReconnectScheduled attempt 1)
    reconnecting --attempt failed, attempts left--> reconnecting (next ReconnectScheduled)
    reconnecting --attempt failed, none left--> failed      (final)
    reconnecting --reconnected--> connected (attempt counter reset)
    connected --resume--> reconnecting, attempt 0 (the SDK resumes on its own; a disconnect
                          after it schedules attempt 1)
    any but ended --end--> ended                           (final)
    not final --cleanup requested (agent gave up)--> failed (final), CleanupRequested

Reports about the network (disconnected, attempts, reconnected, quality) are facts that can
arrive late or twice; when one no longer applies, the session records SignalIgnored with the
reason instead of acting on it. Commands that make no sense in the current state (connect on
a failed session, a disconnect before the first connect) raise InvalidTransition and record
nothing.

Command methods (public) decide; event methods (private, `@event`) only apply.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from clara_es.domain.errors import InvalidTransition
from clara_es.domain.policy import BackoffPolicy
from clara_es.domain.signal import Actor, Signal


class ConnectionState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    ENDED = "ended"


class Quality(StrEnum):
    """LiveKit's rtc.ConnectionQuality, by name."""

    EXCELLENT = "excellent"
    GOOD = "good"
    POOR = "poor"
    LOST = "lost"
    UNKNOWN = "unknown"


class AgentConnection(StrEnum):
    """The agent's own connection to the room (issue 6): its outages are not the user's."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


BAD_QUALITY = frozenset({Quality.POOR, Quality.LOST})
FINAL_STATES = frozenset({ConnectionState.FAILED, ConnectionState.ENDED})
ATTEMPTS_EXHAUSTED = "max reconnect attempts reached"


class VoiceSession(Aggregate):
    # ---- creation ---------------------------------------------------------------------

    @event("SessionStarted")
    def __init__(
        self,
        room: str,
        participant: str,
        policy: dict[str, Any],
        timestamp: datetime,
        actor: str,
        cause: dict[str, Any],
    ) -> None:
        self.room = room
        self.participant = participant
        self.policy = policy
        self.state = ConnectionState.IDLE
        self.quality = Quality.UNKNOWN
        self.attempt = 0
        self.attempt_in_flight = False
        self.next_retry_at: datetime | None = None
        self.outage_started_at: datetime | None = None

    @classmethod
    def start(
        cls, room: str, participant: str, policy: BackoffPolicy, signal: Signal,
        session_id: UUID | None = None,
    ) -> VoiceSession:
        """A new session; `session_id` is given only when a stored session is re-run."""
        if not room or not participant:
            raise InvalidTransition("a session needs a room name and a participant identity")
        facts = {"room": room, "participant": participant, "policy": policy.model_dump()}
        if session_id is None:
            return cls(**facts, **signal.facts())
        return cls._create(  # eventsourcing's own path for a created event with a given id
            event_class=cls.SessionStarted, id=session_id, **facts, **signal.facts()
        )

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy.model_validate(self.policy)

    @property
    def max_attempts(self) -> int:
        return int(self.policy["max_attempts"])

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    # ---- commands: the client connects --------------------------------------------------

    def connect(self, signal: Signal) -> None:
        """The user pressed Start Session. Never starts a second connection."""
        if self.is_final:
            raise InvalidTransition(
                f"session is {self.state}: start a new session instead of reconnecting this one"
            )
        if self.state == ConnectionState.IDLE:
            self._connecting(**signal.facts())
        else:
            self._ignore(signal, f"connect while {self.state}: no second connection is started")

    def mark_connected(self, signal: Signal) -> None:
        """The room reports the first successful connect."""
        if self.state in (ConnectionState.IDLE, ConnectionState.CONNECTING):
            self._connected(**signal.facts())
        elif self.state == ConnectionState.RECONNECTING:
            raise InvalidTransition("session is reconnecting: report 'reconnected' instead")
        else:
            self._ignore(signal, f"connected while {self.state}")

    # ---- commands: the network fails and recovers ---------------------------------------

    def disconnect(self, reason: str, signal: Signal) -> None:
        """The room (client) or the agent lost the connection: schedule attempt 1."""
        self._require_started(signal)
        if self.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING) or self.resuming:
            self._disconnected(reason=reason, **signal.facts())
            self._schedule(1, signal)
        elif self.state == ConnectionState.RECONNECTING:
            self._ignore(
                signal, f"already reconnecting (attempt {self.attempt}): one outage, one schedule"
            )
        else:
            self._ignore(signal, f"disconnected after the session was {self.state}")

    def start_attempt(self, attempt: int, signal: Signal) -> None:
        """The timer for `attempt` fired and the client calls connect again."""
        if self.state != ConnectionState.RECONNECTING:
            self._ignore(signal, f"attempt {attempt} fired while {self.state}")
        elif attempt != self.attempt:
            self._ignore(signal, f"stale timer: attempt {attempt} fired, current is {self.attempt}")
        elif self.attempt_in_flight:
            self._ignore(signal, f"attempt {attempt} is already in flight")
        else:
            self._reconnect_attempted(attempt=attempt, **signal.facts())

    def fail_attempt(self, attempt: int, error: str, signal: Signal) -> None:
        """Attempt `attempt` did not connect: schedule the next one, or fail for good.

        The current attempt may fail without having been reported as started: that is how
        the watchdog fails an attempt whose client died before it could try.
        """
        if self.state != ConnectionState.RECONNECTING:
            self._ignore(signal, f"attempt {attempt} failed while {self.state}")
        elif attempt != self.attempt:
            self._ignore(signal, f"stale failure: attempt {attempt}, current is {self.attempt}")
        else:
            self._reconnect_attempt_failed(attempt=attempt, error=error, **signal.facts())
            if attempt >= self.max_attempts:
                self._failed(reason=ATTEMPTS_EXHAUSTED, attempts=attempt, **signal.facts())
            else:
                self._schedule(attempt + 1, signal)

    def reconnect(self, signal: Signal) -> None:
        """The room is connected again."""
        self._require_started(signal)
        if self.state == ConnectionState.RECONNECTING:
            outage = signal.at - (self.outage_started_at or signal.at)
            self._reconnected(
                attempt=self.attempt, outage_ms=_ms(outage), **signal.facts()
            )
        elif self.state == ConnectionState.FAILED:
            self._ignore(signal, "reconnected after Failed: the session stays failed")
        else:
            self._ignore(signal, f"reconnected while {self.state}")

    def change_quality(self, participant: str, quality: Quality, signal: Signal) -> None:
        """The agent saw the participant's connection quality change. Repeats record nothing."""
        if participant != self.participant:
            raise InvalidTransition(
                f"participant {participant!r} is not in this session ({self.participant!r} is)"
            )
        if self.is_final:
            self._ignore(signal, f"quality {quality} reported after the session was {self.state}")
            return
        if quality == self.quality:
            return
        # QualityPoor is not decided here: a poor reading must hold for a window first
        # (see confirm_poor_quality), so flapping quality never restarts the pipeline.
        self._quality_changed(
            participant=participant, quality=str(quality), previous=str(self.quality),
            **signal.facts(),
        )

    def end(self, reason: str, signal: Signal) -> None:
        """The user stopped the session."""
        if self.is_final:
            self._ignore(signal, f"end after the session was {self.state}")
        else:
            self._session_ended(reason=reason, **signal.facts())

    # ---- deciding helpers ---------------------------------------------------------------

    def _require_started(self, signal: Signal) -> None:
        if self.state == ConnectionState.IDLE:
            raise InvalidTransition(f"{signal.name}: the session has not connected yet")

    def _schedule(self, attempt: int, signal: Signal) -> None:
        delay_ms = self.backoff.delay_ms(attempt, key=str(self.id))
        due_at = signal.at + timedelta(milliseconds=delay_ms)
        self._reconnect_scheduled(
            attempt=attempt, delay_ms=delay_ms, due_at=due_at, **signal.facts()
        )

    def _ignore(self, signal: Signal, reason: str) -> None:
        self._signal_ignored(signal=signal.name, reason=reason, **signal.facts())

    # ---- events: applying facts -----------------------------------------------------------

    @event("Connecting")
    def _connecting(self, timestamp: datetime, actor: str, cause: dict[str, Any]) -> None:
        self.state = ConnectionState.CONNECTING

    @event("Connected")
    def _connected(self, timestamp: datetime, actor: str, cause: dict[str, Any]) -> None:
        self.state = ConnectionState.CONNECTED

    @event("QualityChanged")
    def _quality_changed(
        self, participant: str, quality: str, previous: str,
        timestamp: datetime, actor: str, cause: dict[str, Any],
    ) -> None:
        self.quality = Quality(quality)
        if self.quality not in BAD_QUALITY:
            self.poor_confirmed = False
        if self.quality in (Quality.GOOD, Quality.EXCELLENT):
            self.reconnection_attempts = 0  # the poor-quality episode is over

    @event("QualityPoor")
    def _quality_poor(
        self, participant: str, quality: str,
        timestamp: datetime, actor: str, cause: dict[str, Any],
    ) -> None:
        self.poor_confirmed = True

    @event("Disconnected")
    def _disconnected(
        self, reason: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.state = ConnectionState.RECONNECTING
        # After the SDK's own resume gave up, the outage began when the resume started.
        self.outage_started_at = self.outage_started_at or timestamp

    @event("ReconnectScheduled")
    def _reconnect_scheduled(
        self, attempt: int, delay_ms: int, due_at: datetime,
        timestamp: datetime, actor: str, cause: dict[str, Any],
    ) -> None:
        self.state = ConnectionState.RECONNECTING
        self.attempt = attempt
        self.attempt_in_flight = False
        self.next_retry_at = due_at

    @event("ReconnectAttempted")
    def _reconnect_attempted(
        self, attempt: int, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.attempt_in_flight = True
        self.next_retry_at = None

    @event("ReconnectAttemptFailed")
    def _reconnect_attempt_failed(
        self, attempt: int, error: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.attempt_in_flight = False

    @event("Reconnected")
    def _reconnected(
        self, attempt: int, outage_ms: int, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.state = ConnectionState.CONNECTED
        self.attempt = 0
        self.attempt_in_flight = False
        self.next_retry_at = None
        self.outage_started_at = None

    @event("Failed")
    def _failed(
        self, reason: str, attempts: int, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.state = ConnectionState.FAILED
        self.attempt_in_flight = False
        self.next_retry_at = None

    @event("SignalIgnored")
    def _signal_ignored(
        self, signal: str, reason: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        pass

    @event("SessionEnded")
    def _session_ended(
        self, reason: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.state = ConnectionState.ENDED
        self.attempt_in_flight = False
        self.next_retry_at = None

    # ==== LiveKit edges (issue 6) =========================================================
    # The SDK's own resume, the agent's own connection, poor quality confirmed after a
    # window, what LiveKit reports about the participant and the room, and webhooks that
    # LiveKit delivers more than once. Class-level defaults: streams written before these
    # existed read back unchanged.

    agent_connection: AgentConnection = AgentConnection.CONNECTED
    poor_confirmed: bool = False
    webhook_ids: tuple[str, ...] = ()
    WEBHOOK_IDS_KEPT = 256

    @property
    def resuming(self) -> bool:
        """The room resumes on its own: reconnecting, and no attempt of ours is scheduled."""
        return self.state == ConnectionState.RECONNECTING and self.attempt == 0

    def start_resume(self, signal: Signal) -> None:
        """The client's room reports `reconnecting`: the SDK tries to resume by itself."""
        self._require_started(signal)
        if self.state == ConnectionState.CONNECTED:
            self._resume_started(**signal.facts())
        else:
            self._ignore(signal, f"the room started resuming while {self.state}")

    def confirm_poor_quality(self, participant: str, signal: Signal) -> None:
        """The participant's quality stayed poor (or lost) for the whole window."""
        self._require_participant(participant)
        if self.is_final:
            self._ignore(signal, f"poor quality confirmed after the session was {self.state}")
        elif self.quality not in BAD_QUALITY:
            self._ignore(signal, f"quality recovered to {self.quality} within the window")
        elif self.poor_confirmed:
            self._ignore(signal, "poor quality already confirmed for this spell")
        else:
            self._quality_poor(participant=participant, quality=str(self.quality), **signal.facts())

    def change_agent_connection(
        self, connection: AgentConnection, reason: str, signal: Signal
    ) -> None:
        """The agent's own room connection changed. Repeats record nothing."""
        if connection == self.agent_connection:
            return
        if self.is_final:
            self._ignore(signal, f"agent {connection} after the session was {self.state}")
            return
        self._agent_connection_changed(connection=str(connection), reason=reason, **signal.facts())

    def report_participant_left(self, reason: str, user_initiated: bool, signal: Signal) -> None:
        """LiveKit says the participant left the room (the agent's room, or a webhook).

        While the agent's own connection is reconnecting, its SDK reports every remote
        participant as disconnected: that is the agent's outage, not the user's.
        """
        if signal.actor == Actor.AGENT and self.agent_connection != AgentConnection.CONNECTED:
            self._ignore(
                signal,
                f"participant left while the agent itself was {self.agent_connection}: "
                "the agent's outage, not the user's",
            )
        elif self.state == ConnectionState.IDLE or self.is_final:
            self._ignore(signal, f"participant left while {self.state}")
        elif user_initiated:
            self._session_ended(reason=f"participant left ({reason})", **signal.facts())
        else:
            self.disconnect(reason, signal)

    def report_participant_joined(self, signal: Signal) -> None:
        """LiveKit says the participant is in the room. Joining while connected is a repeat."""
        if self.is_final:
            self._ignore(signal, f"participant joined after the session was {self.state}")
        elif self.state == ConnectionState.RECONNECTING:
            self.reconnect(signal)
        elif self.state in (ConnectionState.IDLE, ConnectionState.CONNECTING):
            self._connected(**signal.facts())

    def finish_room(self, signal: Signal) -> None:
        """LiveKit closed the room: nothing is left to reconnect to."""
        if self.is_final:
            self._ignore(signal, f"room finished after the session was {self.state}")
        else:
            self._session_ended(reason="room finished", **signal.facts())

    def receive_webhook(self, webhook_id: str, kind: str, signal: Signal) -> bool:
        """Record a webhook delivery; False (and nothing recorded) if it was delivered before."""
        if not webhook_id:
            raise InvalidTransition("a webhook needs an id to be recorded at most once")
        if webhook_id in self.webhook_ids:
            return False
        self._webhook_received(webhook_id=webhook_id, kind=kind, **signal.facts())
        return True

    def _require_participant(self, participant: str) -> None:
        if participant != self.participant:
            raise InvalidTransition(
                f"participant {participant!r} is not in this session ({self.participant!r} is)"
            )

    @event("ResumeStarted")
    def _resume_started(self, timestamp: datetime, actor: str, cause: dict[str, Any]) -> None:
        self.state = ConnectionState.RECONNECTING
        self.attempt = 0
        self.next_retry_at = None
        self.outage_started_at = timestamp

    @event("AgentConnectionChanged")
    def _agent_connection_changed(
        self, connection: str, reason: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.agent_connection = AgentConnection(connection)

    @event("WebhookReceived")
    def _webhook_received(
        self, webhook_id: str, kind: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.webhook_ids = (*self.webhook_ids, webhook_id)[-self.WEBHOOK_IDS_KEPT :]


    # ==== the agent's side: pipeline restarts and cleanup ==================================
    #
    # The process manager asks (PipelineRestartRequested, CleanupRequested) and the effect
    # runner reports the outcome with the request's id. Each request has exactly one
    # outcome: a second report for the same request (an effect run again after a crash)
    # is recorded as SignalIgnored. Cleanup facts may follow Failed/SessionEnded: the
    # client's state stays final, the server still has to tidy up behind it.

    reconnection_attempts: int = 0  # pipeline restarts in the current poor-quality episode
    restart_request: str | None = None  # id of the restart that has no outcome yet
    cleanup_request: str | None = None
    cleanup_outcome: str | None = None  # "cleaned", "failed" or "skipped"

    def request_pipeline_restart(self, cap: int, signal: Signal) -> None:
        """Quality is poor: restart the agent's audio pipeline, or give up at the cap."""
        if self.cleanup_request is not None or self.is_final:
            self._ignore(signal, f"pipeline restart while the session is {self.state}")
        elif self.quality not in BAD_QUALITY:
            self._ignore(signal, f"quality is {self.quality}: no pipeline restart needed")
        elif self.restart_request is not None:
            self._ignore(signal, f"pipeline restart {self.restart_request} has no outcome yet")
        elif self.reconnection_attempts >= cap:
            self.request_cleanup(f"{cap} pipeline restarts did not bring the participant back",
                                 signal)
        else:
            self._pipeline_restart_requested(
                request_id=signal.id, restart=self.reconnection_attempts + 1, cap=cap,
                **signal.facts(),
            )

    def finish_pipeline_restart(self, request_id: str, error: str | None, signal: Signal) -> None:
        """The agent's pipeline restarted (error None) or could not (error says why)."""
        if request_id != self.restart_request:
            self._ignore(signal, f"pipeline restart {request_id} has no outcome pending")
        elif error is None:
            self._pipeline_restarted(
                request_id=request_id, restart=self.reconnection_attempts, **signal.facts()
            )
        else:
            self._pipeline_restart_failed(
                request_id=request_id, restart=self.reconnection_attempts, error=error,
                **signal.facts(),
            )

    def request_cleanup(self, reason: str, signal: Signal) -> None:
        """Remove the participant and the room. A live session fails first, so a late
        reconnect cannot revive a session whose room is being torn down."""
        if self.cleanup_request is not None:
            self._ignore(signal, f"cleanup {self.cleanup_request} was already requested")
            return
        if not self.is_final:
            self._failed(reason=reason, attempts=self.attempt, **signal.facts())
        self._cleanup_requested(
            request_id=signal.id, reason=reason, room=self.room, participant=self.participant,
            **signal.facts(),
        )

    def finish_cleanup(
        self, request_id: str, outcome: str, detail: str, signal: Signal
    ) -> None:
        """outcome: "cleaned" (nothing left, or nothing was there), "failed", "skipped"."""
        if request_id != self.cleanup_request or self.cleanup_outcome is not None:
            self._ignore(signal, f"cleanup {request_id} has no outcome pending")
        elif outcome == "cleaned":
            self._session_cleaned_up(request_id=request_id, removed=detail, **signal.facts())
        elif outcome == "failed":
            self._cleanup_failed(request_id=request_id, error=detail, **signal.facts())
        elif outcome == "skipped":
            self._cleanup_skipped(request_id=request_id, reason=detail, **signal.facts())
        else:
            raise InvalidTransition(f"unknown cleanup outcome {outcome!r}")

    @event("PipelineRestartRequested")
    def _pipeline_restart_requested(
        self, request_id: str, restart: int, cap: int,
        timestamp: datetime, actor: str, cause: dict[str, Any],
    ) -> None:
        self.restart_request = request_id
        self.reconnection_attempts = restart

    @event("PipelineRestarted")
    def _pipeline_restarted(
        self, request_id: str, restart: int, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.restart_request = None

    @event("PipelineRestartFailed")
    def _pipeline_restart_failed(
        self, request_id: str, restart: int, error: str,
        timestamp: datetime, actor: str, cause: dict[str, Any],
    ) -> None:
        self.restart_request = None

    @event("CleanupRequested")
    def _cleanup_requested(
        self, request_id: str, reason: str, room: str, participant: str,
        timestamp: datetime, actor: str, cause: dict[str, Any],
    ) -> None:
        self.cleanup_request = request_id

    @event("SessionCleanedUp")
    def _session_cleaned_up(
        self, request_id: str, removed: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.cleanup_outcome = "cleaned"

    @event("CleanupFailed")
    def _cleanup_failed(
        self, request_id: str, error: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.cleanup_outcome = "failed"

    @event("CleanupSkipped")
    def _cleanup_skipped(
        self, request_id: str, reason: str, timestamp: datetime, actor: str, cause: dict[str, Any]
    ) -> None:
        self.cleanup_outcome = "skipped"


def _ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)
