"""The live feed: one Server-Sent Event per version of a session's stream, carrying the UI
state right after that version. The event id is the version, so a client that reconnects
with `Last-Event-ID: k` gets exactly the versions after k, then follows new ones.

New versions are noticed three ways: every append through this process's application (the
API's commands, webhooks, the process manager running inside `serve`) wakes the feeds of its
session at once (`Changes.notify`, from `LiveSessions`); on PostgreSQL, every append by ANY
process wakes them through the process's one LISTEN connection (`LogListener`, which reads
the sessions of the new events and calls `Changes.notify_many`); and every feed re-reads its
stream on a slow timer (`Options.feed_poll`), which is how other processes' appends are found
on SQLite and a safety net on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from uuid import UUID

from fastapi.sse import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from clara_es.application import VoiceSessions
from clara_es.domain import UIState, VoiceSession, ui_state

EVENT = "state"


class Changes:
    """Wakes the feeds of a session when this process appended to it (from any thread)."""

    def __init__(self) -> None:
        self._waiters: dict[UUID, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, session_id: UUID) -> None:
        if self._loop is not None and session_id in self._waiters:
            self._loop.call_soon_threadsafe(self._wake, session_id)

    def notify_many(self, session_ids: Iterable[UUID]) -> None:
        """Wake the feeds of these sessions (from any thread): one hop to the event loop."""
        if self._loop is None or self._loop.is_closed():
            return
        watched = [s for s in session_ids if s in self._waiters]
        if watched:
            self._loop.call_soon_threadsafe(self._wake_each, watched)

    def notify_all(self) -> None:
        """Wake every feed (appends may have been missed: each re-reads its stream)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_all)

    def close(self) -> None:
        """End every feed (the server is shutting down: open feeds must not hold it up)."""
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for session_id in list(self._waiters):
            self._wake(session_id)

    def _wake_each(self, session_ids: list[UUID]) -> None:
        for session_id in session_ids:
            self._wake(session_id)

    def _wake(self, session_id: UUID) -> None:
        for waiter in self._waiters.get(session_id, ()):
            waiter.set()

    @property
    def listeners(self) -> int:
        return sum(map(len, self._waiters.values()))

    @contextmanager
    def subscribe(self, session_id: UUID) -> Iterator[asyncio.Event]:
        waiter = asyncio.Event()
        self._waiters.setdefault(session_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters[session_id]
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[session_id]


class Follower:
    """Keeps one session folded up to the last version sent, reading only newer events."""

    def __init__(self, app: VoiceSessions, session_id: UUID, session: VoiceSession | None) -> None:
        self.app = app
        self.session_id = session_id
        self.session = session
        self.version = session.version if session is not None else 0

    @classmethod
    def after(cls, app: VoiceSessions, session_id: UUID, version: int) -> Follower:
        return cls(app, session_id, app.session(session_id, version=version) if version else None)

    def newer(self) -> list[UIState]:
        states = []
        for event in self.app.events_after(self.session_id, self.version):
            self.session = event.mutate(self.session)
            assert self.session is not None
            states.append(ui_state(self.session))
            self.version = self.session.version
        return states


def message(state: UIState) -> ServerSentEvent:
    return ServerSentEvent(id=str(state.version), event=EVENT, data=state.model_dump(mode="json"))


async def feed(
    app: VoiceSessions, changes: Changes, session_id: UUID, after: int | None, poll: float
) -> AsyncIterator[ServerSentEvent]:
    """Without `after`: the current state, then every change. With it: versions after it."""
    with changes.subscribe(session_id) as woken:
        follower: Follower
        if after is None:
            current = await run_in_threadpool(app.session, session_id)
            follower = Follower(app, session_id, current)
            yield message(ui_state(current))
        else:
            follower = await run_in_threadpool(Follower.after, app, session_id, after)
        while not changes.closed:
            woken.clear()
            for state in await run_in_threadpool(follower.newer):
                yield message(state)
            with suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), poll)


def describe() -> dict[str, Any]:
    """The OpenAPI description of the feed's response."""
    return {
        200: {
            "description": (
                "text/event-stream: `event: state`, `id:` the stream version, `data:` the UI "
                "state (JSON) after that version"
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    }
