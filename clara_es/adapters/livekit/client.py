"""The client's side: a `livekit.rtc.Room` that reconnects on the session's schedule.

Was ClaraWebRTCService. Two layers, both recorded:

1. The SDK resumes on its own: room `reconnecting` records ResumeStarted (the status shows
   "Reconnecting..."), then `reconnected` records Reconnected, or `disconnected` when it gives up.
2. On `disconnected` for any reason but the user leaving (CLIENT_INITIATED ends the session),
   the client does not clean up: it follows the session's ReconnectScheduled facts, calls
   `connect(url, token)` once per attempt when the attempt is due, and reports the attempt, its
   failure or the success. It stops when the session is connected again, failed or ended.

Only one connect runs at a time, and `connect()` while connecting or reconnecting starts
nothing (the session records the refusal). `connect` is injectable; by default it is the
room's own `room.connect`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

from livekit import rtc

from clara_es.adapters.livekit import sdk
from clara_es.adapters.livekit.clock import AsyncClock
from clara_es.adapters.livekit.leave_reasons import leave_reason
from clara_es.domain import UIState, schedule
from clara_es.domain.commands import (
    Command,
    Connect,
    EndSession,
    MarkConnected,
    ReportDisconnected,
    ReportReconnected,
    StartResume,
)
from clara_es.domain.events import Connecting
from clara_es.domain.session import FINAL_STATES

log = logging.getLogger(__name__)

Connector = Callable[[str, str], Awaitable[Any]]


class Sessions(Protocol):
    """Who decides the client's commands: the application itself (in-process, tests, the
    demo), or `clara_es.client.Client`, which decides locally and delivers through its outbox."""

    def status(self, session_id: UUID) -> UIState: ...

    def handle_with_events(
        self, command: Command, session_id: UUID | None = None
    ) -> tuple[UIState, Sequence[object]]: ...


class ReconnectingClient:
    def __init__(
        self,
        app: Sessions,
        session_id: UUID,
        room: rtc.Room,
        url: str,
        token: str,
        *,
        clock: AsyncClock,
        connector: Connector | None = None,
        room_factory: Callable[[], rtc.Room] | None = None,
    ) -> None:
        self.app = app
        self.session_id = session_id
        self.room = room
        self.url = url
        self.token = token
        self.clock = clock
        self._connector: Connector | None = connector
        # Without an injected connector every attempt joins with a fresh Room (see _attempt).
        self._room_factory = room_factory or (rtc.Room if connector is None else None)
        self._state = app.status(session_id)
        self._subscribers: set[asyncio.Queue[UIState]] = set()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._connecting = False
        self._handlers: dict[str, Callable[..., None]] = {
            "reconnecting": self._on_reconnecting,
            "reconnected": self._on_reconnected,
            "disconnected": self._on_disconnected,
            "token_refreshed": self._on_token_refreshed,
        }
        self._listen(room)

    def _listen(self, room: rtc.Room) -> None:
        for name, handler in self._handlers.items():
            room.on(name, handler)  # type: ignore[arg-type]

    def _unlisten(self, room: rtc.Room) -> None:
        for name, handler in self._handlers.items():
            room.off(name, handler)  # type: ignore[arg-type]

    @property
    def state(self) -> UIState:
        """The session's UI state as of the last step this client took."""
        return self._state

    @property
    def busy(self) -> bool:
        """A connect is in flight or the reconnect schedule is being followed."""
        return self._connecting or (
            self._reconnect_task is not None and not self._reconnect_task.done()
        )

    def changes(self) -> AsyncIterator[UIState]:
        """Every new UI state from this call on; ends after a final one (failed or ended)."""
        queue: asyncio.Queue[UIState] = asyncio.Queue()
        self._subscribers.add(queue)

        async def follow() -> AsyncIterator[UIState]:
            try:
                while True:
                    state = await queue.get()
                    yield state
                    if state.connection_state in FINAL_STATES:
                        return
            finally:
                self._subscribers.discard(queue)

        return follow()

    # ---- what the user does ----------------------------------------------------------------

    async def connect(self) -> UIState:
        """Start Session. While connecting or reconnecting it starts nothing new."""
        state, events = self.app.handle_with_events(Connect(), self.session_id)
        self._publish(state)
        if self.busy or not any(isinstance(e, Connecting) for e in events):
            return state  # the session was not idle: it recorded the refusal
        self._connecting = True
        try:
            await self._join(self.room)
        except Exception as exc:
            # A first connect that fails is an outage like any other: follow the schedule.
            failed = ReportDisconnected.build(reason=f"connect failed: {_text(exc)}")
            self._publish(self._send(failed))
            self._follow_schedule()
        else:
            self._publish(self._send(MarkConnected()))
        finally:
            self._connecting = False
        return self._state

    async def leave(self) -> UIState:
        """The user stops the session: leave the room and end the session for good."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self.room.isconnected():
            await self.room.disconnect()  # the room reports CLIENT_INITIATED: the session ends
        if self.app.status(self.session_id).connection_state not in FINAL_STATES:
            self._publish(self._send(EndSession.build(reason="user left")))
        return self._state

    def close(self) -> None:
        """Stop listening to the room and stop following the schedule."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        self._unlisten(self.room)

    # ---- what the room reports -------------------------------------------------------------------

    def _on_reconnecting(self) -> None:
        self._publish(self._send(StartResume()))

    def _on_reconnected(self) -> None:
        self._publish(self._send(ReportReconnected()))

    def _on_disconnected(self, reason: int | None = None) -> None:
        left = leave_reason(reason)
        if left.ends_session:  # left, removed, another device, room gone: no retry
            if self._reconnect_task is not None:
                self._reconnect_task.cancel()
            text = "user left the room" if reason == sdk.USER_LEFT else left.description
            self._publish(self._send(EndSession.build(reason=text)))
            return
        self._publish(self._send(ReportDisconnected.build(reason=left.text)))
        self._follow_schedule()

    def _on_token_refreshed(self) -> None:
        # The SDK keeps the token the server refreshed (rtc 1.2 has no public accessor).
        self.token = getattr(self.room, "_token", None) or self.token

    # ---- the session's schedule ----------------------------------------------------------------

    def _follow_schedule(self) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())
            self._reconnect_task.add_done_callback(_log_failure)

    async def _reconnect(self) -> None:
        while (due := schedule.due_attempt(self.app.status(self.session_id))) is not None:
            await self.clock.sleep_until(due.due_at)
            state, events = self.app.handle_with_events(due.command(), self.session_id)
            self._publish(state)
            if not schedule.started(events):
                continue  # the session moved on while we waited (recorded as SignalIgnored)
            self._connecting = True
            error: str | None = None
            try:
                await self._join(self._fresh_room())
            except Exception as exc:
                log.info("reconnect attempt %s failed: %s", due.attempt, exc)
                error = _text(exc)
            finally:
                self._connecting = False
            self._publish(self._send(schedule.outcome(due.attempt, error)))

    def _fresh_room(self) -> rtc.Room:
        """The Room for a reconnect attempt: a new one, listened to instead of the old.

        A Room the server disconnected keeps its native session: joining with it again fails
        ("participant already exists") and every connect adds one FFI queue subscription.
        """
        if self._room_factory is None:
            return self.room
        self._unlisten(self.room)
        self.room = self._room_factory()
        self._listen(self.room)
        return self.room

    async def _join(self, room: rtc.Room) -> None:
        if self._connector is not None:
            await self._connector(self.url, self.token)
        else:
            await room.connect(self.url, self.token)

    def _send(self, command: Command) -> UIState:
        return self.app.handle_with_events(command, self.session_id)[0]

    def _publish(self, state: UIState) -> UIState:
        if state.version != self._state.version:
            self._state = state
            for queue in self._subscribers:
                queue.put_nowait(state)
        return self._state


def _text(exc: BaseException) -> str:
    """ConnectError keeps its text in `.message`; other errors in str()."""
    return str(getattr(exc, "message", "") or exc) or type(exc).__name__


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("following the reconnect schedule stopped", exc_info=task.exception())
