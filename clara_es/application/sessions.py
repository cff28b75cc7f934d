"""VoiceSessions: the commands and queries of the service, over one event stream per session."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper

from clara_es.application.upcasting import CausalMapper
from clara_es.domain import (
    Actor,
    BackoffPolicy,
    Clock,
    ConcurrencyConflict,
    DomainError,
    Quality,
    SessionNotFound,
    Signal,
    SystemClock,
    UIState,
    VoiceSession,
    ui_state,
)
from clara_es.domain.session import AgentConnection

log = logging.getLogger(__name__)

Decision = Callable[[VoiceSession, Signal], None]
CLEANUP_OUTCOMES = ("cleaned", "failed", "skipped")


class InvalidCommand(DomainError):
    """The command's arguments are not valid."""


class VoiceSessions(Application[UUID]):
    """Every command reads the session, lets the aggregate decide, and appends the result.

    Two writers of one session are serialised by the store: the loser of a race gets an
    IntegrityError (the stream position is taken), reads the session again and decides again.
    """

    name = "VoiceSessions"
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {VoiceSession: 100}
    max_tries = 8

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        policy: BackoffPolicy | None = None,
    ) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.default_policy = policy or BackoffPolicy()
        self.conflicts_retried = 0

    def construct_mapper(self) -> Mapper[UUID]:
        # Issue 7: events stored without actor or cause read back (see upcasting.py).
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=CausalMapper
        )

    # ---- commands -------------------------------------------------------------------------

    def start(
        self,
        room: str,
        participant: str,
        policy: BackoffPolicy | None = None,
        actor: Actor = Actor.CLIENT,
    ) -> UIState:
        policy = policy or self.default_policy
        signal = Signal(
            name="start",
            actor=actor,
            at=self.clock.now(),
            args={"room": room, "participant": participant, "policy": policy.model_dump()},
            read_version=0,
        )
        session = VoiceSession.start(room, participant, policy, signal)
        self.save(session)
        return ui_state(session)

    def connect(self, session_id: UUID, actor: Actor = Actor.CLIENT) -> UIState:
        return self._execute(session_id, "connect", actor, {}, lambda s, sig: s.connect(sig))

    def connected(self, session_id: UUID, actor: Actor = Actor.CLIENT) -> UIState:
        return self._execute(
            session_id, "connected", actor, {}, lambda s, sig: s.mark_connected(sig)
        )

    def disconnected(
        self, session_id: UUID, reason: str = "unknown", actor: Actor = Actor.CLIENT
    ) -> UIState:
        return self._execute(
            session_id, "disconnected", actor, {"reason": reason},
            lambda s, sig: s.disconnect(reason, sig),
        )

    def attempt_started(
        self, session_id: UUID, attempt: int, actor: Actor = Actor.CLIENT
    ) -> UIState:
        _check_attempt(attempt)
        return self._execute(
            session_id, "attempt_started", actor, {"attempt": attempt},
            lambda s, sig: s.start_attempt(attempt, sig),
        )

    def attempt_failed(
        self, session_id: UUID, attempt: int, error: str, actor: Actor = Actor.CLIENT
    ) -> UIState:
        _check_attempt(attempt)
        return self._execute(
            session_id, "attempt_failed", actor, {"attempt": attempt, "error": error},
            lambda s, sig: s.fail_attempt(attempt, error, sig),
        )

    def reconnected(self, session_id: UUID, actor: Actor = Actor.CLIENT) -> UIState:
        return self._execute(session_id, "reconnected", actor, {}, lambda s, sig: s.reconnect(sig))

    def quality_changed(
        self, session_id: UUID, participant: str, quality: Quality | str,
        actor: Actor = Actor.AGENT,
    ) -> UIState:
        try:
            q = Quality(quality)
        except ValueError:
            known = ", ".join(q.value for q in Quality)
            raise InvalidCommand(f"unknown quality {quality!r}: one of {known}") from None
        return self._execute(
            session_id, "quality_changed", actor, {"participant": participant, "quality": str(q)},
            lambda s, sig: s.change_quality(participant, q, sig),
        )

    def end(self, session_id: UUID, reason: str = "user", actor: Actor = Actor.CLIENT) -> UIState:
        return self._execute(
            session_id, "end", actor, {"reason": reason}, lambda s, sig: s.end(reason, sig)
        )

    # ---- commands of the agent's side: the process manager and the effect runner ----------
    #
    # `command_id` is the id of the timer or request that caused the command: the process
    # manager matches the resulting fact back to it through the event's `cause`.

    def request_pipeline_restart(
        self, session_id: UUID, cap: int, actor: Actor = Actor.SYSTEM,
        command_id: str | None = None,
    ) -> UIState:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise InvalidCommand(f"the restart cap must be a whole number from 1, got {cap!r}")
        return self._execute(
            session_id, "request_pipeline_restart", actor, {"cap": cap},
            lambda s, sig: s.request_pipeline_restart(cap, sig), command_id=command_id,
        )

    def pipeline_restart_finished(
        self, session_id: UUID, request_id: str, error: str | None = None,
        actor: Actor = Actor.AGENT,
    ) -> UIState:
        return self._execute(
            session_id, "pipeline_restart_finished", actor,
            {"request_id": request_id, "error": error},
            lambda s, sig: s.finish_pipeline_restart(request_id, error, sig),
        )

    def request_cleanup(
        self, session_id: UUID, reason: str, actor: Actor = Actor.SYSTEM,
        command_id: str | None = None,
    ) -> UIState:
        return self._execute(
            session_id, "request_cleanup", actor, {"reason": reason},
            lambda s, sig: s.request_cleanup(reason, sig), command_id=command_id,
        )

    def cleanup_finished(
        self, session_id: UUID, request_id: str, outcome: str, detail: str,
        actor: Actor = Actor.SYSTEM,
    ) -> UIState:
        if outcome not in CLEANUP_OUTCOMES:
            raise InvalidCommand(
                f"unknown cleanup outcome {outcome!r}: one of {', '.join(CLEANUP_OUTCOMES)}"
            )
        return self._execute(
            session_id, "cleanup_finished", actor,
            {"request_id": request_id, "outcome": outcome, "detail": detail},
            lambda s, sig: s.finish_cleanup(request_id, outcome, detail, sig),
        )

    def timed_out(
        self, session_id: UUID, attempt: int, command_id: str | None = None
    ) -> UIState:
        """The watchdog: attempt `attempt` has no outcome by its deadline."""
        _check_attempt(attempt)
        return self._execute(
            session_id, "attempt_timed_out", Actor.SYSTEM, {"attempt": attempt},
            lambda s, sig: s.fail_attempt(attempt, "timeout", sig), command_id=command_id,
        )

    # ---- queries ----------------------------------------------------------------------------

    def session(self, session_id: UUID, version: int | None = None) -> VoiceSession:
        try:
            return self.repository.get(session_id, version=version)
        except AggregateNotFoundError:
            raise SessionNotFound(f"no session {session_id}") from None

    def status(self, session_id: UUID) -> UIState:
        return ui_state(self.session(session_id))

    # ---- the one way a command is executed --------------------------------------------------

    def _execute(
        self, session_id: UUID, name: str, actor: Actor, args: dict[str, Any], decide: Decision,
        command_id: str | None = None,
    ) -> UIState:
        lost_reads: tuple[int, ...] = ()
        for _ in range(self.max_tries):
            session = self.session(session_id)
            read_version = session.version
            signal = Signal(
                name=name, actor=actor, at=self.clock.now(), args=args,
                read_version=read_version, lost_reads=lost_reads,
                **({"id": command_id} if command_id else {}),
            )
            command_id = signal.id
            decide(session, signal)
            try:
                self.save(session)
            except IntegrityError:
                self.conflicts_retried += 1
                lost_reads = (*lost_reads, read_version)
                log.info(
                    "concurrency conflict on %s, retrying %s (read version %s)",
                    session_id, name, signal.read_version,
                )
                continue
            return ui_state(session)
        raise ConcurrencyConflict(
            f"{name} on session {session_id} lost {self.max_tries} races to other writers"
        )


    # ==== LiveKit edges (issue 6) ===========================================================

    def resume_started(self, session_id: UUID, actor: Actor = Actor.CLIENT) -> UIState:
        """The client's room is resuming on its own (room `reconnecting`)."""
        return self._execute(
            session_id, "resume_started", actor, {}, lambda s, sig: s.start_resume(sig)
        )

    def quality_poor_confirmed(
        self, session_id: UUID, participant: str, actor: Actor = Actor.AGENT
    ) -> UIState:
        """The participant's quality stayed poor for the agent's whole window."""
        return self._execute(
            session_id, "quality_poor_confirmed", actor, {"participant": participant},
            lambda s, sig: s.confirm_poor_quality(participant, sig),
        )

    def agent_connection_changed(
        self, session_id: UUID, connection: AgentConnection | str, reason: str = "",
        actor: Actor = Actor.AGENT,
    ) -> UIState:
        try:
            c = AgentConnection(connection)
        except ValueError:
            known = ", ".join(c.value for c in AgentConnection)
            raise InvalidCommand(
                f"unknown agent connection {connection!r}: one of {known}"
            ) from None
        return self._execute(
            session_id, "agent_connection_changed", actor,
            {"connection": str(c), "reason": reason},
            lambda s, sig: s.change_agent_connection(c, reason, sig),
        )

    def participant_left(
        self, session_id: UUID, reason: str = "unknown", user_initiated: bool = False,
        actor: Actor = Actor.AGENT,
    ) -> UIState:
        return self._execute(
            session_id, "participant_left", actor,
            {"reason": reason, "user_initiated": user_initiated},
            lambda s, sig: s.report_participant_left(reason, user_initiated, sig),
        )

    def participant_joined(self, session_id: UUID, actor: Actor = Actor.AGENT) -> UIState:
        return self._execute(
            session_id, "participant_joined", actor, {},
            lambda s, sig: s.report_participant_joined(sig),
        )

    def room_finished(self, session_id: UUID, actor: Actor = Actor.SYSTEM) -> UIState:
        return self._execute(
            session_id, "room_finished", actor, {}, lambda s, sig: s.finish_room(sig)
        )

    def deliver_webhook(
        self, session_id: UUID, webhook_id: str, kind: str, args: dict[str, Any],
        decide: Decision, actor: Actor = Actor.SYSTEM,
    ) -> UIState | None:
        """Run `decide` for webhook `webhook_id` at most once per session.

        A redelivered webhook appends nothing and returns None. The check and the append are
        one decision, so two deliveries racing each other still append once.
        """
        fresh = False

        def once(session: VoiceSession, signal: Signal) -> None:
            nonlocal fresh
            fresh = session.receive_webhook(webhook_id, kind, signal)
            if fresh:
                decide(session, signal)

        state = self._execute(
            session_id, f"webhook {kind}", actor, {**args, "webhook_id": webhook_id}, once
        )
        return state if fresh else None


def _check_attempt(attempt: int) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidCommand(f"attempt must be a whole number from 1, got {attempt!r}")
