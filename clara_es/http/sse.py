"""The live feed: one Server-Sent Event per version of a session's stream, carrying the UI
state right after that version. The event id is the version, so a client that reconnects
with `Last-Event-ID: k` gets exactly the versions after k, then follows new ones.

New versions are noticed three ways: every append through this process's application (the
API's commands, webhooks, the process manager running inside `serve`) hands its events to the
feeds of its session at once (`Changes.publish`, from `LiveSessions`); on PostgreSQL, every
append by ANY process reaches them through the process's one LISTEN connection (`LogListener`,
which reads the new events once for every feed of the process); and every feed re-reads its
stream on a slow timer (`Options.feed_poll`), which is how other processes' appends are found
on SQLite and a safety net on PostgreSQL. A feed sends delivered events without reading the
store; it re-reads its stream only when a version is missing before them (or on the timer).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from fastapi.sse import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from clara_es.application import VoiceSessions
from clara_es.domain import UIState, VoiceSession, ui_state
from clara_es.domain.events import SessionEvent

EVENT = "state"


class Inbox(asyncio.Event):
    """One feed's wake-up: set when its session changed, with the new events when they are
    known (`pending`), or a flag that the feed must re-read its stream (`reread`)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[SessionEvent] = []
        self.reread = True  # a feed reads its stream once when it opens

    def take(self) -> tuple[list[SessionEvent], bool]:
        """The events delivered since the last take, and whether to re-read the stream."""
        pending, reread = self.pending, self.reread
        self.pending, self.reread = [], False
        self.clear()
        return pending, reread


class Changes:
    """Wakes the feeds of a session when it changed (from any thread): with the new events
    themselves when the caller has them (`publish`: the feed sends them without reading the
    store), or without (`notify`: the feed re-reads its stream)."""

    def __init__(self) -> None:
        self._waiters: dict[UUID, set[Inbox]] = {}
        # The last version handed to the feeds of each followed session (a hint: the
        # LISTEN connection skips decoding what this process published already).
        self._published: dict[UUID, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def wanted(self, session_id: UUID, version: int) -> bool:
        """Whether a feed follows the session and this version was not handed to it yet."""
        return session_id in self._waiters and version > self._published.get(session_id, 0)

    def publish(self, events: Iterable[SessionEvent]) -> None:
        """Hand new events (in each session's order) to their sessions' feeds: one hop to
        the event loop for all of them."""
        if self._loop is None or self._loop.is_closed():
            return
        by_session: dict[UUID, list[SessionEvent]] = {}
        for event in events:
            if event.originator_id in self._waiters:
                by_session.setdefault(event.originator_id, []).append(event)
        published = self._published
        for session_id, delivered in by_session.items():
            version = delivered[-1].originator_version
            if version > published.get(session_id, 0):
                published[session_id] = version
        if by_session:
            self._loop.call_soon_threadsafe(self._deliver, by_session)

    def notify(self, session_id: UUID) -> None:
        self.notify_many((session_id,))

    def notify_many(self, session_ids: Iterable[UUID]) -> None:
        """Wake the feeds of these sessions to re-read their streams (from any thread)."""
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
        self._wake_each(list(self._waiters))

    def _wake_each(self, session_ids: list[UUID]) -> None:
        for session_id in session_ids:
            for inbox in self._waiters.get(session_id, ()):
                inbox.reread = True
                inbox.set()

    def _deliver(self, by_session: dict[UUID, list[SessionEvent]]) -> None:
        for session_id, events in by_session.items():
            for inbox in self._waiters.get(session_id, ()):
                inbox.pending.extend(events)
                inbox.set()

    @property
    def listeners(self) -> int:
        return sum(map(len, self._waiters.values()))

    @contextmanager
    def subscribe(self, session_id: UUID) -> Iterator[Inbox]:
        inbox = Inbox()
        self._waiters.setdefault(session_id, set()).add(inbox)
        try:
            yield inbox
        finally:
            inboxes = self._waiters[session_id]
            inboxes.discard(inbox)
            if not inboxes:
                del self._waiters[session_id]
                self._published.pop(session_id, None)


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
        """The states of the stream's versions after the last one sent, read from the store."""
        return self.take(self.app.events_after(self.session_id, self.version))[0]

    def take(self, events: Iterable[SessionEvent]) -> tuple[list[UIState], bool]:
        """The states of the delivered events that continue the stream (those already sent
        are skipped), and whether one was missing before the next (then read the store)."""
        states = []
        for event in events:
            version = event.originator_version
            if version <= self.version:
                continue
            if version != self.version + 1:
                return states, True
            self.session = event.mutate(self.session)
            assert self.session is not None
            states.append(ui_state(self.session))
            self.version = version
        return states, False


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
            delivered, reread = woken.take()
            states, gap = follower.take(delivered)
            for state in states:
                yield message(state)
            if reread or gap:
                for state in await run_in_threadpool(follower.newer):
                    yield message(state)
            try:
                await asyncio.wait_for(woken.wait(), poll)
            except TimeoutError:
                woken.reread = True  # the slow re-read: other processes' appends on SQLite


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
