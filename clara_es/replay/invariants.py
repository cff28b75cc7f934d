"""What must hold of every session after every simulated step, checked on the stored stream.

The checker takes only the events appended since it last looked at a session and folds them
into its own copy of the session, so checking after every step costs what the step appended
(no re-read of the session). The events come from the application's saves as they are
stored (its `_notify`), not read back: a save that returned stored exactly those events at
exactly those versions, and the next ones of a stream are taken from the saves only when they
continue it (first version = last checked + 1); otherwise, as for a session that was stored
before the checker started, they are read from the store.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from clara_es.application import VoiceSessions
from clara_es.application.records import event_type
from clara_es.domain import VoiceSession, events
from clara_es.domain.schedule import early_by

# What may still be appended to a final session: records of signals that no longer apply, and
# the process manager's cleanup of it.
AFTER_FINAL = (
    events.SignalIgnored, events.CleanupRequested, *events.CLEANUP_OUTCOMES, events.WebhookReceived
)


class Violation(BaseModel):
    invariant: str
    session_id: UUID
    version: int
    at: datetime
    message: str


@dataclass
class SessionFacts:
    """What the checker has learnt of one session so far."""

    max_attempts: int = 0
    version: int = 0
    final: str | None = None
    scheduled: int = 0
    due_at: datetime | None = None
    failures_this_outage: int = 0
    started_attempts: list[int] = field(default_factory=list)
    cleanup_outcomes: list[Any] = field(default_factory=list)


class Invariants:
    def __init__(self, app: VoiceSessions) -> None:
        self.app = app
        self.facts: dict[UUID, SessionFacts] = {}
        # Each session as its stored stream folds, up to the last event checked.
        self.sessions: dict[UUID, VoiceSession] = {}
        # Events the application stored since the checker last looked, by session, and the
        # sessions appended to since `appended` was last cleared.
        self.saved: defaultdict[UUID, list[Any]] = defaultdict(list)
        self.appended: set[UUID] = set()
        app.on_saved(self._saved)

    def _saved(self, recordings: list[Any]) -> None:
        for recording in recordings:
            event = recording.domain_event
            self.saved[event.originator_id].append(event)
            self.appended.add(event.originator_id)

    def read(self, session_id: UUID) -> tuple[VoiceSession, list[Any]]:
        """The session's stored events since the last look, and the session they fold to."""
        facts = self.facts.setdefault(session_id, SessionFacts())
        new = self.saved.pop(session_id, [])
        if not new or new[0].originator_version != facts.version + 1:
            new = self.app.events_after(session_id, facts.version)
        session = self.sessions.get(session_id)
        for event in new:
            session = event.mutate(session)
        assert session is not None, f"no stored session {session_id}"
        self.sessions[session_id] = session
        return session, new

    def check(
        self, session: VoiceSession, new: list[Any], connects: list[int],
        timer_armed: bool | None,
    ) -> list[Violation]:
        """Check the new events of one session and the session they lead to (as `read` gave
        them); `connects` are the attempts the client really connected for, `timer_armed`
        whether the timer worker holds a timer for the session (None while the worker is
        down)."""
        session_id = session.id
        facts = self.facts.setdefault(session_id, SessionFacts())
        found: list[Violation] = []
        last: Any = None
        for event in new:
            last = event
            found.extend(self._event(session_id, facts, event))
            facts.version = event.originator_version

        def violation(invariant: str, message: str) -> Violation:
            return Violation(invariant=invariant, session_id=session_id, version=facts.version,
                             at=last.timestamp if last is not None else self.app.clock.now(),
                             message=message)

        if connects != facts.started_attempts:
            found.append(violation(
                "no effect for a superseded decision",
                f"the client connected for attempts {connects}, the session started "
                f"{facts.started_attempts}",
            ))
        if session.state == "reconnecting" and session.attempt:
            if (session.next_retry_at is not None) == session.attempt_in_flight:
                found.append(violation(
                    "a reconnecting session has a pending timer or an attempt in flight",
                    f"attempt {session.attempt}: due {session.next_retry_at}, in flight "
                    f"{session.attempt_in_flight}",
                ))
            elif timer_armed is False:
                found.append(violation(
                    "a reconnecting session has a pending timer or an attempt in flight",
                    f"attempt {session.attempt} is stored but the timer worker holds no timer",
                ))
        return found

    def _event(self, session_id: UUID, facts: SessionFacts, event: Any) -> list[Violation]:
        kind = event_type(event)
        found = []

        def violation(invariant: str, message: str) -> None:
            found.append(Violation(invariant=invariant, session_id=session_id,
                                   version=event.originator_version, at=event.timestamp,
                                   message=message))

        if isinstance(event, events.CLEANUP_OUTCOMES):
            facts.cleanup_outcomes.append(event)
        if isinstance(event, events.SessionStarted):
            facts.max_attempts = int(event.policy["max_attempts"])
        if facts.final is not None and not isinstance(event, AFTER_FINAL):
            violation("Failed and SessionEnded are final", f"{kind} after {facts.final}")
        match event:
            case events.Failed() | events.SessionEnded() if facts.final is None:
                facts.final = kind
            case events.Disconnected() | events.Reconnected():
                facts.failures_this_outage = 0
            case events.ReconnectScheduled():
                facts.scheduled, facts.due_at = event.attempt, event.due_at
                if event.attempt > facts.max_attempts:
                    violation("attempts never exceed the policy",
                              f"attempt {event.attempt} scheduled, the policy allows "
                              f"{facts.max_attempts}")
            case events.ReconnectAttemptFailed():
                facts.failures_this_outage += 1
                if facts.failures_this_outage > facts.max_attempts:
                    violation("attempts never exceed the policy",
                              f"{facts.failures_this_outage} failed attempts in one outage, the "
                              f"policy allows {facts.max_attempts}")
            case events.ReconnectAttempted():
                facts.started_attempts.append(event.attempt)
                if event.attempt != facts.scheduled:
                    violation("no effect for a superseded decision",
                              f"attempt {event.attempt} started, attempt {facts.scheduled} is "
                              "the one scheduled")
                elif (early := early_by(facts.due_at, event.timestamp)) is not None:
                    violation("no attempt before its timer",
                              f"attempt {event.attempt} started {early.total_seconds():.3f} s "
                              "before its due time")
        return found

    def cleaned_up_once(self, session_id: UUID) -> Violation | None:
        """At the end: a failed or ended session has exactly one cleanup outcome. Counted in
        the stored events checked so far and those stored since (usually none)."""
        facts = self.facts[session_id]
        outcomes = [*facts.cleanup_outcomes, *(
            e for e in self.app.events_after(session_id, facts.version)
            if isinstance(e, events.CLEANUP_OUTCOMES))]
        final = facts.final
        if (final is None and not outcomes) or (final is not None and len(outcomes) == 1):
            return None
        last = outcomes[-1] if outcomes else None
        return Violation(
            invariant="every failed session is cleaned up exactly once",
            session_id=session_id, version=last.originator_version if last else 0,
            at=last.timestamp if last else self.app.clock.now(),
            message=f"{final or 'a live session'} with {len(outcomes)} cleanup outcomes",
        )
