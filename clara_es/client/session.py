"""The client: runs the reconnect schedule locally and reports every fact through its outbox.

The user's screen never waits for the service. Each fact (Start Session pressed, connected,
the network dropped, attempt n started or failed, reconnected, ended) is decided at once by
the same pure domain the service runs (the session's rules, the backoff policy, the status
text and the Start rule), shown, written to the outbox, and then sent: immediately when the
service answers, in order and in one batch with the rest when it comes back. Each fact keeps
the time it happened and an idempotency key, so a batch sent twice (a lost answer, a restart
in the middle of a flush) is recorded once.

    client = Client.start(transport, outbox_path, clock, room, participant)
    client.connect(); client.connected()
    client.disconnected("wifi off")                # Reconnecting... (attempt 1 of 5)
    client.follow(wait_until, connect)             # the schedule: 1, 2, 4, 8, 16 s
    ...
    client = Client.resume(transport, outbox_path, clock)   # after a restart
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from clara_es.client.outbox import Fact, Outbox, StartedSession
from clara_es.client.transport import Refused, Transport, Unreachable
from clara_es.domain import (
    BackoffPolicy,
    Clock,
    SessionNotFound,
    Signal,
    UIState,
    VoiceSession,
    schedule,
    ui_state,
)
from clara_es.domain.commands import (
    ROUTES,
    Command,
    Connect,
    EndSession,
    MarkConnected,
    ReportDisconnected,
)
from clara_es.domain.signal import Actor

log = logging.getLogger(__name__)

ROUTE_OF = {command: route for route, command in ROUTES.items()}
BATCH = 500  # signals per request, as the endpoint takes at most


class Client:
    def __init__(
        self, transport: Transport, outbox: Outbox, clock: Clock, started: StartedSession
    ) -> None:
        self.transport = transport
        self.outbox = outbox
        self.clock = clock
        self.session_id = started.session_id
        self.service_state: UIState | None = None  # the last state the service answered
        self.listeners: list[Callable[[UIState], None]] = []
        self._flushing = threading.Lock()
        self._wake: threading.Event | None = None  # set: a background flusher delivers
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._session = VoiceSession.start(
            started.room, started.participant, BackoffPolicy.model_validate(started.policy),
            Signal(name="start", actor=Actor.CLIENT, at=started.started_at),
            session_id=started.session_id,
        )
        self._session.collect_events()

    # ---- starting and resuming -------------------------------------------------------------

    @classmethod
    def start(
        cls, transport: Transport, outbox_path: Path | str, clock: Clock, room: str,
        participant: str, policy: BackoffPolicy | None = None,
    ) -> Client:
        """Start Session: the service must answer this once (it names the session)."""
        policy = policy or BackoffPolicy()
        state = transport.start(room, participant, policy.model_dump(), uuid.uuid4().hex)
        started = StartedSession(state.session_id, room, participant, policy.model_dump(),
                                 state.updated_at)
        outbox = Outbox(outbox_path)
        outbox.add_session(started)
        return cls(transport, outbox, clock, started)

    @classmethod
    def resume(cls, transport: Transport, outbox_path: Path | str, clock: Clock) -> Client:
        """After a restart: the latest session, its state rebuilt from the outbox's facts, and
        what was not delivered yet sent now (or when the service answers)."""
        outbox = Outbox(outbox_path)
        started = outbox.latest_session()
        if started is None:
            outbox.close()
            raise LookupError(f"no session in {outbox_path}")
        client = cls(transport, outbox, clock, started)
        for fact in outbox.facts(started.session_id):
            client._decide(client._command(fact), fact.occurred_at)
        client.flush()
        return client

    def close(self) -> None:
        self.stop_flushing()
        self.outbox.close()

    # ---- what the screen shows -------------------------------------------------------------

    @property
    def state(self) -> UIState:
        """The UI state, decided locally: it never waits for the service."""
        return ui_state(self._session)

    def pending(self) -> list[Fact]:
        """Facts the service has not answered for yet."""
        return self.outbox.facts(self.session_id, pending_only=True)

    # ---- reporting -------------------------------------------------------------------------

    def report(self, command: Command) -> tuple[UIState, list[Any]]:
        """Decide `command` locally (now), keep it, send what is pending. A command the session
        refuses raises InvalidTransition and keeps nothing."""
        route = ROUTE_OF.get(type(command))
        if route is None:
            raise ValueError(f"{command.name} is not something a client reports")
        at = command.occurred_at or self.clock.now()
        key = command.idempotency_key or uuid.uuid4().hex
        events = self._decide(command, at)
        body = command.model_dump(mode="json", exclude=set(command.META))
        self.outbox.append(self.session_id, route, body, key, at)
        state = self.state
        for listener in self.listeners:
            listener(state)
        if self._wake is not None:
            self._wake.set()  # the background flusher sends it: the caller never waits
        else:
            self.flush()
        return state, events

    # The interface of the LiveKit client's `Sessions`: a ReconnectingClient runs on this
    # client as it runs on the application, without a store.

    def status(self, session_id: UUID) -> UIState:
        self._own(session_id)
        return self.state

    def handle_with_events(
        self, command: Command, session_id: UUID | None = None
    ) -> tuple[UIState, list[Any]]:
        self._own(session_id)
        return self.report(command)

    def _own(self, session_id: UUID | None) -> None:
        if session_id != self.session_id:
            raise SessionNotFound(f"this client follows {self.session_id}, not {session_id}")

    def connect(self) -> UIState:
        return self.report(Connect())[0]

    def connected(self) -> UIState:
        return self.report(MarkConnected())[0]

    def disconnected(self, reason: str = "unknown") -> UIState:
        return self.report(ReportDisconnected.build(reason=reason))[0]

    def end(self, reason: str = "user") -> UIState:
        return self.report(EndSession.build(reason=reason))[0]

    def follow(
        self, wait_until: Callable[[datetime], object], connect: Callable[[int], str | None]
    ) -> UIState:
        """Follow the reconnect schedule locally until it calls for no attempt."""
        state: UIState = schedule.follow(self.report, self.state, wait_until, connect)
        return state

    # ---- delivery --------------------------------------------------------------------------

    def start_flushing(self, every: float = 2.0) -> None:
        """Deliver from a background thread: at once after each report, and every `every`
        seconds while facts are pending (the service may be back), until stop_flushing()."""
        self._stop, wake = threading.Event(), threading.Event()
        self._wake = wake

        def run() -> None:
            while not self._stop.is_set():
                wake.clear()
                with suppress(Refused):  # logged by flush; the facts stay for a later try
                    self.flush()
                wake.wait(every if self.pending() else None)

        self._flusher = threading.Thread(target=run, name="clara-es-outbox", daemon=True)
        self._flusher.start()

    def stop_flushing(self) -> None:
        if self._wake is None:
            return
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout=30)
        self._wake = None

    def flush(self) -> bool:
        """Send every pending fact, oldest first, in batches. False while the service does not
        answer (the facts stay in the outbox); a refusal of the whole batch is raised."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> bool:
        while pending := self.outbox.facts(self.session_id, pending_only=True, limit=BATCH):
            try:
                answer = self.transport.send(
                    self.session_id, self.clock.now(), [f.signal() for f in pending]
                )
            except Unreachable as exc:
                log.info("event=outbox_kept pending=%d reason=%s", len(pending), exc)
                return False
            except Refused:
                log.warning("event=outbox_refused pending=%d", len(pending))
                raise
            results = answer["results"]
            self.outbox.delivered(
                [(f.seq, int(r["status"])) for f, r in zip(pending, results, strict=True)]
            )
            self.service_state = UIState.model_validate(answer["state"])
        return True

    # ---- the local decision ----------------------------------------------------------------

    def _decide(self, command: Command, at: datetime) -> list[Any]:
        signal = Signal(name=command.name, actor=Actor.CLIENT, at=at, args=command.args())
        command.decide(self._session, signal)
        return list(self._session.collect_events())

    @staticmethod
    def _command(fact: Fact) -> Command:
        return ROUTES[fact.type].build(**fact.body)
