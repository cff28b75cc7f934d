"""What the client reports: the session starts, connects, drops, retries, recovers, ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from clara_es.domain.policy import BackoffPolicy
from clara_es.domain.signal import Actor, Signal
from clara_es.domain.state import Quality

if TYPE_CHECKING:
    from clara_es.domain.session import VoiceSession

from clara_es.domain.commands.base import Attempt, Command, Name, Text


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
