"""The connection state machine: what the client, the agent and LiveKit report, decided.

    idle --connect--> connecting --connected--> connected
    connecting | connected --disconnected--> reconnecting (ReconnectScheduled attempt 1)
    reconnecting --attempt failed, attempts left--> reconnecting (next ReconnectScheduled)
    reconnecting --attempt failed, none left--> failed      (final)
    reconnecting --reconnected--> connected (attempt counter reset)
    connected --resume--> reconnecting, attempt 0 (the SDK resumes on its own; a disconnect
                          after it schedules attempt 1)
    any but ended --end--> ended                           (final)

Reports about the network can arrive late or twice; when one no longer applies, the session
records SignalIgnored with the reason instead of acting on it. Commands that make no sense in
the current state raise InvalidTransition and record nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clara_es.domain.errors import InvalidTransition
from clara_es.domain.events import (
    AgentConnectionChanged,
    Connected,
    Connecting,
    Disconnected,
    Failed,
    ReconnectAttempted,
    ReconnectAttemptFailed,
    Reconnected,
    ReconnectScheduled,
    ResumeStarted,
    SessionEnded,
    WebhookReceived,
)
from clara_es.domain.rules import Rules
from clara_es.domain.signal import Actor, Signal
from clara_es.domain.state import ATTEMPTS_EXHAUSTED, AgentConnection, ConnectionState


class ConnectionRules(Rules):
    # ---- the client connects ----------------------------------------------------------------

    def connect(self, signal: Signal) -> None:
        """The user pressed Start Session. Never starts a second connection."""
        if self.is_final:
            raise InvalidTransition(
                f"session is {self.state}: start a new session instead of reconnecting this one"
            )
        if self.state == ConnectionState.IDLE:
            self._record(Connecting, signal)
        else:
            self._ignore(signal, f"connect while {self.state}: no second connection is started")

    def mark_connected(self, signal: Signal) -> None:
        """The room reports the first successful connect."""
        if self.state in (ConnectionState.IDLE, ConnectionState.CONNECTING):
            self._record(Connected, signal)
        elif self.state == ConnectionState.RECONNECTING:
            raise InvalidTransition("session is reconnecting: report 'reconnected' instead")
        else:
            self._ignore(signal, f"connected while {self.state}")

    # ---- the network fails and recovers -----------------------------------------------------

    def start_resume(self, signal: Signal) -> None:
        """The client's room reports `reconnecting`: the SDK tries to resume by itself."""
        self._require_started(signal)
        if self.state == ConnectionState.CONNECTED:
            self._record(ResumeStarted, signal)
        else:
            self._ignore(signal, f"the room started resuming while {self.state}")

    def disconnect(self, reason: str, signal: Signal) -> None:
        """The room (client) or the agent lost the connection: schedule attempt 1."""
        self._require_started(signal)
        if self.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING) or self.resuming:
            self._record(Disconnected, signal, reason=reason)
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
            self._record(ReconnectAttempted, signal, attempt=attempt)

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
            self._record(ReconnectAttemptFailed, signal, attempt=attempt, error=error)
            if attempt >= self.max_attempts:
                self._record(Failed, signal, reason=ATTEMPTS_EXHAUSTED, attempts=attempt)
            else:
                self._schedule(attempt + 1, signal)

    def reconnect(self, signal: Signal) -> None:
        """The room is connected again."""
        self._require_started(signal)
        if self.state == ConnectionState.RECONNECTING:
            outage = signal.at - (self.outage_started_at or signal.at)
            self._record(Reconnected, signal, attempt=self.attempt, outage_ms=_ms(outage))
        elif self.state == ConnectionState.FAILED:
            self._ignore(signal, "reconnected after Failed: the session stays failed")
        else:
            self._ignore(signal, f"reconnected while {self.state}")

    def end(self, reason: str, signal: Signal) -> None:
        """The user stopped the session."""
        if self.is_final:
            self._ignore(signal, f"end after the session was {self.state}")
        else:
            self._record(SessionEnded, signal, reason=reason)

    def end_idle(self, idle: timedelta, signal: Signal) -> None:
        """Nobody reported anything on the session for `idle`: the process manager ends it. A
        report that came in meanwhile keeps it open; a session already over has nothing to end."""
        if self.is_final:
            return
        last = self.last_activity_at or self.created_on
        if signal.at - last < idle:
            self._ignore(signal, f"last report at {last.isoformat()}: not idle for {idle}")
        else:
            self._record(SessionEnded, signal, reason=f"idle: nothing reported for {idle}")

    def _schedule(self, attempt: int, signal: Signal) -> None:
        delay_ms = self.backoff.delay_ms(attempt, key=str(self.id))
        due_at = signal.at + timedelta(milliseconds=delay_ms)
        self._record(ReconnectScheduled, signal, attempt=attempt, delay_ms=delay_ms, due_at=due_at)

    # ---- what LiveKit reports about the participant, the agent and the room -------------------

    def change_agent_connection(
        self, connection: AgentConnection, reason: str, signal: Signal
    ) -> None:
        """The agent's own room connection changed. Repeats record nothing."""
        if connection == self.agent_connection:
            return
        if self.is_final:
            self._ignore(signal, f"agent {connection} after the session was {self.state}")
            return
        self._record(AgentConnectionChanged, signal, connection=str(connection), reason=reason)

    def report_participant_left(self, reason: str, ends_session: bool, signal: Signal) -> None:
        """LiveKit says the participant left the room (the agent's room, or a webhook): the
        end of the session (the user left, was removed, the room is gone) or an outage.

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
        elif ends_session:
            self._record(SessionEnded, signal, reason=f"participant left ({reason})")
        else:
            self.disconnect(reason, signal)

    def report_participant_joined(self, signal: Signal) -> None:
        """LiveKit says the participant is in the room. Joining while connected is a repeat."""
        if self.is_final:
            self._ignore(signal, f"participant joined after the session was {self.state}")
        elif self.state == ConnectionState.RECONNECTING:
            self.reconnect(signal)
        elif self.state in (ConnectionState.IDLE, ConnectionState.CONNECTING):
            self._record(Connected, signal)

    def finish_room(self, signal: Signal) -> None:
        """LiveKit closed the room: nothing is left to reconnect to."""
        if self.is_final:
            self._ignore(signal, f"room finished after the session was {self.state}")
        else:
            self._record(SessionEnded, signal, reason="room finished")

    def receive_webhook(self, webhook_id: str, kind: str, signal: Signal) -> bool:
        """Record a webhook delivery; False (and nothing recorded) if it was delivered before."""
        if not webhook_id:
            raise InvalidTransition("a webhook needs an id to be recorded at most once")
        if webhook_id in self.webhook_ids:
            return False
        self._record(WebhookReceived, signal, webhook_id=webhook_id, kind=kind)
        return True


def attempt_deadline(fact: ReconnectScheduled | ReconnectAttempted, timeout: timedelta) -> datetime:
    """The watchdog: by when an attempt must have an outcome before it is failed as timed out.

    A scheduled attempt gets `timeout` after it was due (its client may have died before
    trying); one that was started gets `timeout` after it started. Both count from when the
    service learned of the fact, so an outage reported afterwards in a batch is not raced by
    timeouts of attempts that already have their outcome further down the batch.
    """
    if isinstance(fact, ReconnectScheduled):
        return max(fact.due_at, fact.recorded_at) + timeout
    return fact.recorded_at + timeout


def _ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)
