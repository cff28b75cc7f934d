"""VoiceSessions: the commands and queries of the service, over one event stream per session.

Every entry point builds a command of the catalogue (clara_es/domain/commands/) and calls
`handle`; the session decides, and the store serialises writers of one session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Mapper,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import Environment, get_topic

from clara_es.adapters.append import OneTripRecorder
from clara_es.adapters.store import Store
from clara_es.adapters.transcoder import OrjsonTranscoder
from clara_es.application.upcasting import CausalMapper
from clara_es.domain import (
    BackoffPolicy,
    Clock,
    ConcurrencyConflict,
    SessionNotFound,
    Signal,
    SystemClock,
    UIState,
    VoiceSession,
    ui_state,
)
from clara_es.domain.commands import (
    Command,
    IdempotencyConflict,
    InvalidCommand,
    StartSession,
)
from clara_es.domain.events import SessionEvent, SessionStarted

log = logging.getLogger(__name__)

SESSION_STARTED = get_topic(SessionStarted)
START_KEYS = UUID("5b1f0a52-6c64-4a55-9a1e-0d7e4c1f0b1a")  # namespace of started sessions' ids
MAX_AHEAD = timedelta(seconds=5)  # a fact may be reported this far in the service's future


def occurred(
    command: Command, now: datetime, clock_offset: timedelta, last_fact_at: datetime | None
) -> datetime:
    """When the fact happened, as the session decides on it.

    The reporter's time, corrected by its clock offset; never after now (a time up to
    MAX_AHEAD in the future is a clock a little fast, later is refused), and never before the
    session's last fact, so a stream's times only go forward.
    """
    if command.occurred_at is None:
        return now
    at = command.occurred_at + clock_offset
    if at > now + MAX_AHEAD:
        raise InvalidCommand(
            f"{command.name}: occurred_at {command.occurred_at.isoformat()} is "
            f"{(at - now).total_seconds():.1f} s in the service's future"
        )
    at = min(at, now)
    return max(at, last_fact_at) if last_fact_at is not None else at


def _ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)


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
        sole_writer: bool = False,
    ) -> None:
        """`sole_writer`: every append to the store goes through this one object (the
        simulator, its process manager included), so a cached session is the latest once saved
        and is not brought forward from the store before each command (a query each), and what
        this object saved is the whole log after what it has read (every append goes through
        `save`: `insert_stored` is refused). Never for `serve` or `run`: other processes append
        to the same streams."""
        if sole_writer:
            env = {**(env or {}), self.AGGREGATE_CACHE_FASTFORWARD: "n"}
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.default_policy = policy or BackoffPolicy()
        self.conflicts_retried = 0
        self.sole_writer = sole_writer
        self._saved_listeners: list[Callable[[list[Recording[UUID]]], None]] = []

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        environment = super().construct_env(name, env)
        if environment.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            # Appends in one round trip (adapters/append.py), unless the environment says.
            environment.setdefault(InfrastructureFactory.APPLICATION_RECORDER_TOPIC,
                                    get_topic(OneTripRecorder))
        # Decoded by orjson (adapters/transcoder.py), unless the environment says.
        environment.setdefault(InfrastructureFactory.TRANSCODER_TOPIC, get_topic(OrjsonTranscoder))
        return environment

    def construct_recorder(self) -> ApplicationRecorder:
        """The recorder, its tables created under the store's schema lock (concurrent starts)."""
        if self.env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
            return super().construct_recorder()
        with Store.from_eventsourcing_env(self.env).schema_lock():
            return super().construct_recorder()

    def construct_mapper(self) -> Mapper[UUID]:
        # Issue 7: events stored without actor or cause read back (see upcasting.py).
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=CausalMapper
        )

    def save(self, *sessions: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """eventsourcing's `save` for sessions: their pending events appended in one
        transaction, the cache and snapshots kept, `_notify` called. Its own version asks of
        every object `isinstance(obj, DomainEventProtocol)`, a runtime Protocol check that
        costs more on Python 3.11 than the rest of the bookkeeping; here every object is an
        aggregate."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for session in sessions:
            processing.events.extend(session.collect_events())
            processing.aggregates[session.id] = session
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def on_saved(
        self, listener: Callable[[list[Recording[UUID]]], None]
    ) -> Callable[[], None]:
        """Call `listener` with the recordings of every save of this object, once stored
        (in the saving thread, in the order of the saves' commits only within a thread).
        Returns what stops it."""
        self._saved_listeners.append(listener)

        def stop() -> None:
            if listener in self._saved_listeners:
                self._saved_listeners.remove(listener)

        return stop

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for listener in tuple(self._saved_listeners):  # another thread may stop one meanwhile
            listener(recordings)

    # ---- the one way a command is executed --------------------------------------------------

    def handle(
        self, command: Command, session_id: UUID | None = None,
        clock_offset: timedelta = timedelta(0),
    ) -> UIState:
        """Let the session decide on `command` and append what it decided: the new UI state."""
        return self.handle_with_events(command, session_id, clock_offset)[0]

    def handle_with_events(
        self, command: Command, session_id: UUID | None = None,
        clock_offset: timedelta = timedelta(0),
    ) -> tuple[UIState, list[SessionEvent]]:
        """`handle`, also answering the events appended (none for a repeat that changed nothing).

        `clock_offset` is how far the reporter's clock is behind the service's (estimated by
        the batch endpoint): its `occurred_at` is corrected by it.
        """
        if isinstance(command, StartSession):
            if session_id is not None:
                raise InvalidCommand("a new session's id is chosen by the service")
            return self._start(command, clock_offset)
        if session_id is None:
            raise InvalidCommand(f"{command.name} needs the session's id")
        lost_reads: tuple[int, ...] = ()
        command_id = command.command_id
        for _ in range(self.max_tries):
            session = self.session(session_id)
            repeat = self._repeat(session, command)
            if repeat is not None:
                return repeat, []
            read_version = session.version
            command_id = self._decide(session, command, command_id, lost_reads, clock_offset)
            events: list[SessionEvent] = list(session.pending_events)
            try:
                self.save(session)
            except IntegrityError:
                self.conflicts_retried += 1
                lost_reads = (*lost_reads, read_version)
                log.info(
                    "concurrency conflict on %s, retrying %s (read version %s)",
                    session_id, command.name, read_version,
                )
                continue
            return ui_state(session), events
        raise ConcurrencyConflict(
            f"{command.name} on session {session_id} lost {self.max_tries} races to other writers"
        )

    def handle_all(self, orders: Sequence[tuple[Command, UUID]]) -> list[Exception | None]:
        """Commands on different sessions, saved together: one transaction, one lock and one
        commit for all of them (what the timers that fall due together send). Each is decided
        as `handle` decides it; if the save loses a race, each is handled alone (read again,
        decided again). Per command: None, or the error it raised (nothing of it appended).
        A second command on a session already in the batch is handled alone after it."""
        outcome: list[Exception | None] = []
        decided: dict[UUID, VoiceSession] = {}
        later: list[int] = []
        for i, (command, session_id) in enumerate(orders):
            outcome.append(None)
            if session_id in decided:
                later.append(i)
                continue
            try:
                session = self.session(session_id)
                if self._repeat(session, command) is None:
                    self._decide(session, command, command.command_id, (), timedelta(0))
                    decided[session_id] = session
            except Exception as exc:
                outcome[i] = exc
        try:
            if decided:
                self.save(*decided.values())
        except IntegrityError:
            self.conflicts_retried += 1
            later = [i for i, o in enumerate(outcome) if o is None]
        for i in later:
            outcome[i] = self._alone(*orders[i])
        return outcome

    def _alone(self, command: Command, session_id: UUID) -> Exception | None:
        try:
            self.handle(command, session_id)
        except Exception as exc:
            return exc
        return None

    def _decide(
        self, session: VoiceSession, command: Command, command_id: str | None,
        lost_reads: tuple[int, ...], clock_offset: timedelta,
    ) -> str:
        """Let the session decide on the command (its facts left pending); the signal's id."""
        signal = self._signal(
            command, session.version, command_id, lost_reads, clock_offset, session.modified_on
        )
        command.decide(session, signal)
        return signal.id

    def _repeat(self, session: VoiceSession, command: Command) -> UIState | None:
        """The first answer, if this command's idempotency key was decided before."""
        if command.idempotency_key is None:
            return None
        known = session.answered(command.idempotency_key)
        if known is None:
            return None
        digest, version = known
        if digest != command.digest():
            raise IdempotencyConflict(
                f"idempotency key {command.idempotency_key!r} was used for a different "
                f"{command.name} (or another command): nothing appended"
            )
        return ui_state(self.session(session.id, version=version))

    def _start(
        self, command: StartSession, clock_offset: timedelta
    ) -> tuple[UIState, list[SessionEvent]]:
        session_id = None
        if command.idempotency_key is not None:
            # The key names the session: a repeated start finds the session it started.
            session_id = uuid5(START_KEYS, f"{command.participant}/{command.idempotency_key}")
            try:
                existing = self.session(session_id)
            except SessionNotFound:
                pass
            else:
                repeat = self._repeat(existing, command)
                if repeat is None:
                    raise IdempotencyConflict("this idempotency key started another session")
                return repeat, []
        received = command
        policy = command.policy or self.default_policy
        if command.policy is None:
            command = command.model_copy(update={"policy": policy})
        signal = self._signal(command, 0, command.command_id, (), clock_offset, None)
        signal = replace(signal, digest=received.digest() if signal.digest else None)
        session = VoiceSession.start(
            command.room, command.participant, policy, signal, session_id=session_id
        )
        events: list[SessionEvent] = list(session.pending_events)
        try:
            self.save(session)
        except IntegrityError:  # the same start, at the same moment, from another process
            return self._start(received, clock_offset)
        return ui_state(session), events

    def _signal(
        self, command: Command, read_version: int, command_id: str | None,
        lost_reads: tuple[int, ...], clock_offset: timedelta, last_fact_at: datetime | None,
    ) -> Signal:
        now = self.clock.now()
        at = occurred(command, now, clock_offset, last_fact_at)
        return Signal(
            name=command.name, actor=command.by, at=at, args=command.args(),
            read_version=read_version, lost_reads=lost_reads,
            recorded_at=now, clock_offset_ms=_ms(clock_offset),
            idempotency_key=command.idempotency_key,
            digest=command.digest() if command.idempotency_key else None,
            **({"id": command_id} if command_id else {}),
        )

    # ---- queries ----------------------------------------------------------------------------

    def session(self, session_id: UUID, version: int | None = None) -> VoiceSession:
        try:
            return self.repository.get(session_id, version=version)
        except AggregateNotFoundError:
            raise SessionNotFound(f"no session {session_id}") from None

    def status(self, session_id: UUID) -> UIState:
        return ui_state(self.session(session_id))

    def events_after(
        self, session_id: UUID, version: int = 0, up_to: int | None = None
    ) -> list[SessionEvent]:
        """The session's stored events after `version` (up to `up_to`, inclusive), in order.

        Empty for a session that does not exist (or has nothing newer).
        """
        return list(self.repository.event_store.get(session_id, gt=version, lte=up_to))

    def log_after(self, position: int, limit: int) -> list[tuple[int, SessionEvent]]:
        """Up to `limit` facts of every session after log position `position`, in log order,
        each with its position."""
        notifications = self.recorder.select_notifications(
            start=position, limit=limit, inclusive_of_start=False)
        return [(n.id, self.mapper.to_domain_event(n)) for n in notifications]

    def stored_events(self, session_id: UUID) -> list[StoredEvent]:
        """The session's events as stored (topic and encoded state): for export."""
        return list(self.recorder.select_events(session_id))

    def insert_stored(self, stored: list[StoredEvent]) -> None:
        """Append events as stored (an import); IntegrityError if a version is taken."""
        if self.sole_writer:
            raise RuntimeError("a sole writer appends through save: its listeners see it all")
        self.recorder.insert_events(stored)

    def started_sessions(self, page: int = 1000) -> Iterator[UUID]:
        """Every stored session, in the order they started (from the log, not the views)."""
        start = 1
        while True:
            found = self.recorder.select_notifications(start, page, topics=[SESSION_STARTED])
            for notification in found:
                yield UUID(str(notification.originator_id))
            if len(found) < page:
                return
            start = found[-1].id + 1
