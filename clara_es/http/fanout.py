"""One fan-out per process from the appends to the live feeds (http/sse.py).

New versions of a session are noticed three ways: every append through this process's
application (the API's commands, webhooks, the process manager running inside `serve`) hands
its events over at once (`Changes.publish`, from `LiveSessions`); every append by ANY process
reaches the process's one log follower (adapters/notify.py: LISTEN on PostgreSQL, a tail of the
log on SQLite), which reads and decodes the new events once for every feed of the process; and
a slow timer per feed (`Options.feed_poll`) re-reads the session as a safety net.

Each session followed here has one `Channel`: the session folded up to the last version handed
to its feeds, each new version's SSE message rendered once for all of them. A feed writes those
bytes without reading the store; when a version is missing, the channel re-reads its session
(once for all its feeds), and only a feed that resumes from older versions than the channel
holds reads the store for itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple
from uuid import UUID

from starlette.concurrency import run_in_threadpool

from clara_es.application import VoiceSessions
from clara_es.domain import UIState, VoiceSession, ui_state
from clara_es.domain.events import SessionEvent

EVENT = b"state"
RECENT = 64  # rendered versions a channel keeps for feeds a little behind


def render(state: UIState) -> bytes:
    """One SSE message: the version as its id, the UI state (JSON) as its data."""
    return b"event: %s\ndata: %s\nid: %d\n\n" % (
        EVENT, state.model_dump_json().encode(), state.version)


class Continued(NamedTuple):
    session: VoiceSession | None  # folded up to the last state
    states: list[UIState]  # one per version that continued the fold
    gap: bool  # a version was missing before the next event: read the store


def continue_fold(session: VoiceSession | None, events: Iterable[SessionEvent]) -> Continued:
    """Fold the events that continue `session`'s stream (those it holds already are skipped),
    stopping before a missing version: the fold behind a channel and a resuming feed."""
    version = session.version if session is not None else 0
    states: list[UIState] = []
    for event in events:
        if event.originator_version <= version:
            continue
        if event.originator_version != version + 1:
            return Continued(session, states, True)
        session = event.mutate(session)
        assert session is not None
        version = session.version
        states.append(ui_state(session))
    return Continued(session, states, False)


class Inbox:
    """One feed's wake-up: the rendered versions handed to it, and whether to look again."""

    def __init__(self) -> None:
        self.woken = asyncio.Event()
        self.pending: list[tuple[int, bytes]] = []
        self.reread = False
        self.closed = False

    def take(self) -> tuple[list[tuple[int, bytes]], bool]:
        pending, reread = self.pending, self.reread
        self.pending, self.reread = [], False
        self.woken.clear()
        return pending, reread

    def close(self) -> None:
        self.closed = True
        self.woken.set()


class Channel:
    """Every feed of one session in this process, and the session folded for all of them."""

    def __init__(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.inboxes: set[Inbox] = set()
        self.session: VoiceSession | None = None  # owned by the channel once seeded
        self.recent: deque[tuple[int, bytes]] = deque(maxlen=RECENT)
        self._refreshing: asyncio.Future[None] | None = None
        self._asked = self._read = 0  # refreshes asked for, and the last one read

    @property
    def version(self) -> int:
        return self.session.version if self.session is not None else 0

    def seed(self, session: VoiceSession, rendered: list[tuple[int, bytes]]) -> None:
        """A session read from the store by a feed (which hands the object over), with the
        versions it rendered up to the session's own: handed to the other feeds too."""
        old = self.version
        if session.version <= old:
            return
        self.session = session
        new = [item for item in rendered if item[0] > old]
        if not new or new[0][0] != old + 1:
            self.recent.clear()  # `recent` is contiguous
        self._hand(new)

    def fold(self, events: Iterable[SessionEvent]) -> bool:
        """Render the events that continue the fold and hand them to every feed; False when
        one is missing before them (or nothing was read yet): then the channel must re-read."""
        if self.session is None:
            return False
        self.session, states, gap = continue_fold(self.session, events)
        self._hand([(state.version, render(state)) for state in states])
        return not gap

    def _hand(self, rendered: list[tuple[int, bytes]]) -> None:
        if not rendered:
            return
        self.recent.extend(rendered)
        for inbox in self.inboxes:
            inbox.pending.extend(rendered)
            inbox.woken.set()

    def since(self, version: int) -> list[tuple[int, bytes]] | None:
        """The rendered versions after `version`, or None if the oldest kept is later."""
        if not self.recent or self.recent[-1][0] <= version:
            return []
        if self.recent[0][0] > version + 1:
            return None
        return [item for item in self.recent if item[0] > version]

    async def refresh(self, app: VoiceSessions) -> None:
        """Read the session's new versions from the store: one read for all the feeds that ask
        while none runs, and another after it for those that asked while it ran (it may have
        read before what woke them)."""
        self._asked += 1
        wanted = self._asked
        while self._read < wanted:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.ensure_future(self._refresh(app, self._asked))
            await asyncio.shield(self._refreshing)

    async def _refresh(self, app: VoiceSessions, asked: int) -> None:
        if self.session is not None:
            events = await run_in_threadpool(app.events_after, self.session_id, self.version)
            if not self.fold(events):
                self.session = None  # only if the store lost versions: read it anew
        if self.session is None:
            session = await run_in_threadpool(app.session, self.session_id)
            self.seed(session, [(session.version, render(ui_state(session)))])
        self._read = max(self._read, asked)


class Changes:
    """The channels of the sessions followed in this process; wakes them from any thread."""

    def __init__(self) -> None:
        self._channels: dict[UUID, Channel] = {}
        # The last version handed to the feeds of each followed session (a hint: the log
        # follower skips decoding what this process published already).
        self._published: dict[UUID, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def wanted(self, session_id: UUID, version: int) -> bool:
        """Whether a feed follows the session and this version was not handed to it yet."""
        return session_id in self._channels and version > self._published.get(session_id, 0)

    def publish(self, events: Iterable[SessionEvent]) -> None:
        """Hand new events (in each session's order) to their sessions' feeds: one hop to the
        event loop for all of them."""
        if self._loop is None or self._loop.is_closed():
            return
        by_session: dict[UUID, list[SessionEvent]] = {}
        for event in events:
            if event.originator_id in self._channels:
                by_session.setdefault(event.originator_id, []).append(event)
        published = self._published
        for session_id, delivered in by_session.items():
            version = delivered[-1].originator_version
            if version > published.get(session_id, 0):
                published[session_id] = version
        if by_session:
            self._loop.call_soon_threadsafe(self._deliver, by_session)

    def notify_many(self, session_ids: Iterable[UUID]) -> None:
        """Wake the feeds of these sessions to re-read them (from any thread)."""
        if self._loop is None or self._loop.is_closed():
            return
        watched = [s for s in session_ids if s in self._channels]
        if watched:
            self._loop.call_soon_threadsafe(self._wake_each, watched)

    def notify_all(self) -> None:
        """Wake every feed (appends may have been missed: each channel re-reads its session)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_all)

    def close(self) -> None:
        """End every feed (the server is shutting down: open feeds must not hold it up)."""
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        self._wake_each(list(self._channels))

    def _wake_each(self, session_ids: list[UUID]) -> None:
        for session_id in session_ids:
            channel = self._channels.get(session_id)
            for inbox in channel.inboxes if channel is not None else ():
                inbox.reread = True
                inbox.woken.set()

    def _deliver(self, by_session: dict[UUID, list[SessionEvent]]) -> None:
        for session_id, events in by_session.items():
            channel = self._channels.get(session_id)
            if channel is not None and not channel.fold(events):
                self._wake_each([session_id])

    @property
    def listeners(self) -> int:
        return sum(len(c.inboxes) for c in self._channels.values())

    @contextmanager
    def subscribe(self, session_id: UUID) -> Iterator[tuple[Channel, Inbox]]:
        channel = self._channels.get(session_id)
        if channel is None:
            channel = self._channels[session_id] = Channel(session_id)
        inbox = Inbox()
        channel.inboxes.add(inbox)
        try:
            yield channel, inbox
        finally:
            channel.inboxes.discard(inbox)
            if not channel.inboxes:
                del self._channels[session_id]
                self._published.pop(session_id, None)
