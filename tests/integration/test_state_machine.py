"""Hypothesis drives VoiceSessions on a real SQLite file and a virtual clock with arbitrary
interleavings of commands, timers and redelivered (duplicated, late, reordered) signals, and
checks the invariants after every step; any failure is shrunk to a shortest interleaving."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from clara_es.application import VoiceSessions, session_history
from clara_es.domain import (
    Actor,
    BackoffPolicy,
    ConnectionState,
    DomainError,
    VirtualClock,
    commands,
)
from clara_es.replay.verify import verify_session
from tests.support.regressions import one_attempt_too_many

FINAL = {ConnectionState.FAILED, ConnectionState.ENDED}
actors = st.sampled_from([Actor.CLIENT, Actor.AGENT, Actor.SYSTEM])


class SessionsMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.app = VoiceSessions(clock=self.clock)  # eventsourcing's in-memory store
        self.sent: dict[UUID, list[commands.Command]] = {}
        self.final: dict[UUID, ConnectionState] = {}

    def teardown(self) -> None:
        try:
            for session_id in self.sent:  # the stored history re-runs exactly
                assert verify_session(self.app, session_id) is None
        finally:
            self.app.close()

    def _send(self, session_id: UUID, command: commands.Command) -> None:
        """Run a command; a refusal must append nothing."""
        self.sent[session_id].append(command)
        before = self.app.session(session_id).version
        try:
            self.app.handle(command, session_id)
        except DomainError:
            assert self.app.session(session_id).version == before

    # ---- the client, the agent and the timers ------------------------------------------------

    @rule(target=sessions, max_attempts=st.integers(1, 4), base_ms=st.sampled_from([0, 100, 1000]))
    def start(self, max_attempts: int, base_ms: int) -> UUID:
        policy = BackoffPolicy(max_attempts=max_attempts, base_delay_ms=base_ms)
        start = commands.StartSession(room="room", participant="alice", policy=policy)
        session_id = self.app.handle(start).session_id
        self.sent[session_id] = []
        return session_id

    @rule(session_id=sessions)
    def connect(self, session_id: UUID) -> None:
        self._send(session_id, commands.Connect())
        self._send(session_id, commands.MarkConnected())

    @rule(session_id=sessions, actor=actors)
    def disconnect(self, session_id: UUID, actor: Actor) -> None:
        self._send(session_id, commands.ReportDisconnected(reason="blink", actor=actor))

    @rule(session_id=sessions)
    def timer_fires(self, session_id: UUID) -> None:
        state = self.app.status(session_id)
        if state.next_retry_at is not None:
            self.clock.advance_to(state.next_retry_at)
        attempt = max(state.attempt, 1)
        self._send(session_id, commands.StartAttempt(attempt=attempt, actor=Actor.SYSTEM))

    @rule(session_id=sessions, attempt=st.integers(1, 5), actor=actors)
    def attempt_fails(self, session_id: UUID, attempt: int, actor: Actor) -> None:
        self._send(session_id, commands.FailAttempt(attempt=attempt, error="down", actor=actor))

    @rule(session_id=sessions, seconds=st.sampled_from([1, 10, 40]))
    def watchdog(self, session_id: UUID, seconds: int) -> None:
        self.clock.advance(seconds)
        attempt = max(self.app.status(session_id).attempt, 1)
        timeout = commands.FailAttempt(attempt=attempt, error="timeout", actor=Actor.SYSTEM)
        self._send(session_id, timeout)

    @rule(session_id=sessions, actor=actors)
    def reconnected(self, session_id: UUID, actor: Actor) -> None:
        self._send(session_id, commands.ReportReconnected(actor=actor))

    @rule(session_id=sessions, quality=st.sampled_from(["poor", "good", "lost"]))
    def quality(self, session_id: UUID, quality: str) -> None:
        self._send(session_id, commands.ChangeQuality.build(participant="alice", quality=quality))

    @rule(session_id=consumes(sessions))
    def end(self, session_id: UUID) -> None:
        self._send(session_id, commands.EndSession(reason="user"))

    @precondition(lambda self: any(self.sent.values()))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A signal arrives again, late, after others: duplicated, late and reordered at once."""
        session_id = data.draw(st.sampled_from([s for s, sent in self.sent.items() if sent]))
        command = data.draw(st.sampled_from(self.sent[session_id]))
        self._send(session_id, command)

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def failed_and_ended_are_final(self) -> None:
        for session_id in self.sent:
            state = self.app.status(session_id).connection_state
            if session_id in self.final:
                assert state == self.final[session_id]
            elif state in FINAL:
                self.final[session_id] = state

    @invariant()
    def attempts_never_exceed_the_policy(self) -> None:
        for session_id in self.sent:
            session = self.app.session(session_id)
            allowed = BackoffPolicy.model_validate(session.policy).max_attempts  # as started
            assert 0 <= session.attempt <= allowed
            failures = 0
            for entry in session_history(self.app, session_id):
                if entry.type in ("Disconnected", "Reconnected"):
                    failures = 0
                elif entry.type == "ReconnectAttemptFailed":
                    failures += 1
                    assert failures <= allowed

    @invariant()
    def a_reconnecting_session_has_a_timer_or_an_attempt_in_flight(self) -> None:
        for session_id in self.sent:
            session = self.app.session(session_id)
            if session.state == ConnectionState.RECONNECTING:
                assert (session.next_retry_at is not None) != session.attempt_in_flight


SessionsMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_voice_sessions_under_arbitrary_interleavings = SessionsMachine.TestCase


def test_the_machine_catches_a_planted_regression(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariants can fail: one attempt too many is found within the example budget."""
    one_attempt_too_many(monkeypatch)
    broken = SessionsMachine.TestCase("runTest")
    broken.settings = settings(
        SessionsMachine.TestCase.settings, database=None, derandomize=True, max_examples=400,
        phases=[Phase.generate],  # found is enough here; shrinking is hypothesis' own job
    )
    with pytest.raises(AssertionError):
        broken.runTest()
