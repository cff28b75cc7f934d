"""How an agent process reaches its sessions: the store directly, or the HTTP service.

A link sends the agent's commands to one session and follows that session's stream for the
requests the agent performs (PipelineRestartRequested, CleanupRequested), in stream order,
from a version on. A command the session refuses raises DomainError (over HTTP: a 409).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol
from uuid import UUID

import aiohttp

from clara_es.adapters.livekit.clock import AsyncClock
from clara_es.application import VoiceSessions
from clara_es.domain import DomainError, InvalidTransition, UIState
from clara_es.domain.commands import Command
from clara_es.domain.events import CleanupRequested, PipelineRestartRequested

log = logging.getLogger(__name__)

REQUEST_TYPES = ("PipelineRestartRequested", "CleanupRequested")
HISTORY_TRIES = 50
HISTORY_RETRY_S = 0.2


@dataclass(frozen=True)
class Request:
    """A request of the process manager that the agent performs."""

    kind: Literal["restart", "cleanup"]
    request_id: str
    version: int
    restart: int = 0


class SessionLink(Protocol):
    session_id: UUID

    async def send(self, command: Command) -> None:
        """Run `command` on the session; DomainError when the session refuses it."""
        ...

    def handle(self, command: Command, session_id: UUID) -> UIState | None:
        """The room monitor's way in: run (or queue) `command`, never raising a refusal."""
        ...

    def requests(self, after: int = 0) -> AsyncIterator[Request]:
        """The session's requests after stream version `after`, then every new one."""
        ...


class StoreLink:
    """The agent appends to the store itself and polls the session's stream (`poll`, 0.5 s)."""

    def __init__(
        self, app: VoiceSessions, session_id: UUID, clock: AsyncClock,
        poll: timedelta = timedelta(seconds=0.5),
    ) -> None:
        self.app = app
        self.session_id = session_id
        self.clock = clock
        self.poll = poll

    async def send(self, command: Command) -> None:
        self.app.handle(command, self.session_id)

    def handle(self, command: Command, session_id: UUID) -> UIState | None:
        return self.app.handle(command, session_id)

    async def requests(self, after: int = 0) -> AsyncIterator[Request]:
        version = after
        while True:
            events = self.app.events_after(self.session_id, version)
            for event in events:
                version = event.originator_version
                if isinstance(event, PipelineRestartRequested):
                    yield Request("restart", event.request_id, version, event.restart)
                elif isinstance(event, CleanupRequested):
                    yield Request("cleanup", event.request_id, version)
            if not events:
                await self.clock.sleep_until(self.clock.now() + self.poll)


class HttpLink:
    """The agent talks to `clara-es serve` with an agent token: commands are POSTed to their
    routes; requests are learned from the live feed (Server-Sent Events, resumed with
    Last-Event-ID) and read from the session's history."""

    def __init__(self, base_url: str, token: str, session_id: UUID) -> None:
        self.base_url = base_url.rstrip("/")
        self.session_id = session_id
        self._headers = {"Authorization": f"Bearer {token}"}
        self._http: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[Command] | None = None
        self._sender: asyncio.Task[None] | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers=self._headers)
        return self._http

    async def aclose(self) -> None:
        if self._sender is not None:
            assert self._queue is not None
            await self._queue.join()
            self._sender.cancel()
        if self._http is not None:
            await self._http.close()

    async def send(self, command: Command) -> None:
        if command.route is None:
            raise InvalidTransition(f"{command.name} has no HTTP route")
        url = f"{self.base_url}/api/sessions/{self.session_id}/{command.route}"
        body = command.model_dump(mode="json", exclude=set(command.META), exclude_none=True)
        async with self._session().post(url, json=body) as response:
            if response.status == 200:
                return
            detail = await _detail(response)
            if response.status == 409:
                raise InvalidTransition(detail)
            raise DomainError(f"{command.name}: HTTP {response.status} {detail}")

    def handle(self, command: Command, session_id: UUID) -> UIState | None:
        """Queue the command; one sender posts them in order (the room's callbacks are sync)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._sender = asyncio.get_running_loop().create_task(self._send_queued())
        self._queue.put_nowait(command)
        return None

    async def _send_queued(self) -> None:
        assert self._queue is not None
        while True:
            command = await self._queue.get()
            try:
                await self.send(command)
            except (DomainError, aiohttp.ClientError) as exc:
                log.warning("session %s refused or missed %s: %s", self.session_id,
                            command.name, exc)
            finally:
                self._queue.task_done()

    async def requests(self, after: int = 0) -> AsyncIterator[Request]:
        version = after
        async for seen in self._versions(after):
            if seen <= version:
                continue
            for row in await self._history(seen):
                if row["version"] <= version or row["type"] not in REQUEST_TYPES:
                    continue
                details = row["details"]
                kind: Literal["restart", "cleanup"] = (
                    "restart" if row["type"] == "PipelineRestartRequested" else "cleanup"
                )
                yield Request(kind, details["request_id"], row["version"],
                              int(details.get("restart", 0)))
            version = seen

    async def _versions(self, after: int) -> AsyncIterator[int]:
        """Each new stream version of the session, from the live feed, reconnecting after a
        drop with the last version seen."""
        last = after
        url = f"{self.base_url}/api/sessions/{self.session_id}/live"
        while True:
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                async with self._session().get(url, headers=headers, timeout=None) as response:
                    if response.status != 200:
                        raise DomainError(f"live feed: HTTP {response.status} "
                                          f"{await _detail(response)}")
                    async for line in response.content:
                        text = line.decode().strip()
                        if text.startswith("id:"):
                            last = int(text[3:].strip())
                            yield last
            except aiohttp.ClientError as exc:
                log.warning("live feed of %s dropped (%s); resuming after %d",
                            self.session_id, exc, last)
                await asyncio.sleep(1.0)

    async def _history(self, seen: int) -> list[dict[str, Any]]:
        """The session's events up to `seen` at least, from the history view, which may lag
        the stream by a moment: read again until it has caught up with the feed."""
        url = f"{self.base_url}/api/sessions/{self.session_id}/history"
        rows: list[dict[str, Any]] = []
        for _ in range(HISTORY_TRIES):
            async with self._session().get(url, params={"limit": 10_000}) as response:
                if response.status != 200:
                    raise DomainError(f"history: HTTP {response.status} "
                                      f"{await _detail(response)}")
                rows = await response.json()
            if rows and rows[-1]["version"] >= seen:
                break
            await asyncio.sleep(HISTORY_RETRY_S)
        return rows


async def _detail(response: aiohttp.ClientResponse) -> str:
    text = await response.text()
    try:
        return str(json.loads(text).get("detail", text))
    except (ValueError, AttributeError):
        return text
