"""The live feed: one Server-Sent Event per version of a session's stream, carrying the UI
state right after that version. The event id is the version, so a client that reconnects
with `Last-Event-ID: k` gets exactly the versions after k, then follows new ones.

How new versions reach a feed: http/fanout.py. A feed writes the messages its session's channel
rendered (one rendering per version for every feed of the session), each wake-up's messages in
one write, straight to the ASGI `send` (`FeedResponse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from clara_es.application import VoiceSessions
from clara_es.domain import UIState, VoiceSession, ui_state
from clara_es.http.fanout import EVENT, Changes, Channel, continue_fold, render

__all__ = ["EVENT", "Changes", "FeedResponse", "Follower", "describe", "feed"]

PING_S = 15.0  # a keep-alive comment after this long without an event (proxies cut idle streams)
PING = b": ping\n\n"


class Follower:
    """One session folded from a given version on, reading only newer events: a feed that
    resumes from versions older than its channel holds."""

    def __init__(self, app: VoiceSessions, session_id: UUID, session: VoiceSession | None) -> None:
        self.app = app
        self.session_id = session_id
        self.session = session

    @classmethod
    def after(cls, app: VoiceSessions, session_id: UUID, version: int) -> Follower:
        return cls(app, session_id, app.session(session_id, version=version) if version else None)

    @property
    def version(self) -> int:
        return self.session.version if self.session is not None else 0

    def newer(self) -> list[UIState]:
        """The states of the stream's versions after the last one taken, read from the store."""
        self.session, states, _ = continue_fold(
            self.session, self.app.events_after(self.session_id, self.version))
        return states


async def catch_up(
    app: VoiceSessions, channel: Channel, sent: int, refresh: bool
) -> list[tuple[int, bytes]]:
    """The rendered versions after `sent`: from the channel (which re-reads its session first
    when asked to, once for all its feeds), or read by this feed when they are older than the
    channel keeps (the channel takes what this feed read)."""
    if refresh and channel.session is not None:
        await channel.refresh(app)
    kept = channel.since(sent) if channel.session is not None else None
    if kept is not None:
        return kept
    follower = await run_in_threadpool(Follower.after, app, channel.session_id, sent)
    items = [(s.version, render(s)) for s in await run_in_threadpool(follower.newer)]
    if follower.session is not None and items:
        channel.seed(follower.session, items)
    return items


async def feed(
    app: VoiceSessions, changes: Changes, session_id: UUID, after: int | None, poll: float
) -> AsyncIterator[bytes]:
    """Without `after`: the current state, then every change. With it: versions after it.
    Each item is one or more SSE messages (or a keep-alive comment)."""
    with changes.subscribe(session_id) as (channel, inbox):
        sent = after or 0
        look = after is not None
        if after is None:
            current = await run_in_threadpool(app.session, session_id)
            message = render(ui_state(current))
            sent = current.version
            channel.seed(current, [(sent, message)])
            yield message
        clock = asyncio.get_running_loop().time
        next_read = next_ping = 0.0
        while not (changes.closed or inbox.closed):
            pending, reread = inbox.take()
            out = []
            for version, message in pending:
                if version == sent + 1:
                    out.append(message)
                    sent = version
                elif version > sent:
                    look = True  # a version missing before these: the channel has them
                    break
            if look or reread or not next_read:
                for version, message in await catch_up(app, channel, sent, reread):
                    if version == sent + 1:
                        out.append(message)
                        sent = version
                look = False
                next_read = clock() + poll
            if out:
                yield b"".join(out)
                next_ping = clock() + PING_S
            elif clock() >= next_ping:
                if next_ping:
                    yield PING
                next_ping = clock() + PING_S
            try:
                async with asyncio.timeout_at(min(next_read, next_ping)):
                    await inbox.woken.wait()
            except TimeoutError:
                # The slow safety-net re-read (appends this process did not hear of).
                inbox.reread = inbox.reread or clock() >= next_read


class FeedResponse(Response):
    """A `text/event-stream` response writing the feed's bytes straight to the server (no
    task, queue nor model per message), and ending the feed when the client goes away."""

    media_type = "text/event-stream"

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self.stream = stream
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()

        async def watch() -> None:
            message: Message = {"type": ""}
            while message["type"] != "http.disconnect":
                message = await receive()
            if task is not None:
                task.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})
            async for chunk in self.stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if watcher.done() and task is not None:  # the client went away: end quietly
                task.uncancel()
                return
            raise
        finally:
            watcher.cancel()
            await self.stream.aclose()  # type: ignore[attr-defined]


def describe() -> dict[int | str, dict[str, Any]]:
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
