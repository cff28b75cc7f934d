"""One call inside a livekit-agents entrypoint attaches clara-es to the job's room and session.

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        session = AgentSession(stt=..., llm=..., tts=..., vad=...)
        await session.start(MyAgent(), room=ctx.room)
        clara = await attach(session, link, room=ctx.room, participant="alice")

From then on:
- the room's connection facts are recorded (AgentMonitor: quality changes, which the process
  manager turns into QualityPoor after its window, the participant leaving or joining, the
  agent's own reconnects);
- the session's `error` events (STT, TTS, LLM errors with `recoverable`) and its `close` event
  are recorded as AgentErrorReported and AgentSessionClosed;
- every PipelineRestartRequested of the session is claimed (ClaimPipelineRestart: another agent
  that claimed it first wins, and this one does nothing), performed, and reported with
  FinishPipelineRestart (PipelineRestarted, or PipelineRestartFailed with the error);
- CleanupRequested stops the AgentSession.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.events import CloseEvent, ErrorEvent

from clara_es.adapters.livekit.agent_monitor import AgentMonitor
from clara_es.adapters.livekit.clock import AsyncClock, AsyncSystemClock
from clara_es.agents.links import Request, SessionLink
from clara_es.domain import DomainError
from clara_es.domain.commands import (
    ClaimPipelineRestart,
    FinishPipelineRestart,
    ReportAgentClosed,
    ReportAgentError,
)

log = logging.getLogger(__name__)

Restart = Callable[[AgentSession], Awaitable[None]]


async def restart_audio_path(session: AgentSession) -> None:
    """Restart the session's audio path: the room's audio input re-attached to the user's
    track (RoomIO, when the session runs in a room), a new AgentActivity for the current agent
    (its own audio recognition, new LLM and TTS streams), and a new STT stream (livekit-agents
    carries the STT pipeline over to the new activity; clearing the user turn replaces it)."""
    room_io = session._room_io
    if room_io is not None and room_io.linked_participant is not None:
        identity = room_io.linked_participant.identity
        room_io.unset_participant()
        room_io.set_participant(identity)
    session.update_agent(session.current_agent)
    task = session._update_activity_atask
    if task is not None:
        await task
    session.clear_user_turn()


def default_agent_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Attachment:
    """clara-es attached to one AgentSession; `aclose()` detaches everything."""

    def __init__(
        self, session: AgentSession, link: SessionLink, *, agent_id: str, restart: Restart,
        monitor: AgentMonitor | None,
    ) -> None:
        self.session = session
        self.link = link
        self.agent_id = agent_id
        self.restart = restart
        self.monitor = monitor
        self.restarts: list[tuple[str, str | None]] = []  # (request id, error) performed here
        self.cleaned_up = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy = asyncio.Lock()

    def start(self, after: int) -> None:
        self.session.on("error", self._on_error)
        self.session.on("close", self._on_close)
        self._follower = asyncio.get_running_loop().create_task(self._follow(after))

    async def aclose(self) -> None:
        self.session.off("error", self._on_error)
        self.session.off("close", self._on_close)
        if self.monitor is not None:
            self.monitor.detach()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- the session's own events ---------------------------------------------------------

    def _on_error(self, event: ErrorEvent) -> None:
        error = event.error
        source = str(getattr(error, "type", "error")).removesuffix("_error")
        cause = getattr(error, "error", error)
        text = (str(cause) or type(cause).__name__)[:500]
        self._send_soon(ReportAgentError(source=source, error=text,
                                         recoverable=bool(getattr(error, "recoverable", False))))

    def _on_close(self, event: CloseEvent) -> None:
        error = event.error
        text = "" if error is None else (str(error.error) or type(error.error).__name__)[:500]
        self._send_soon(ReportAgentClosed(reason=str(event.reason.value), error=text))

    def _send_soon(self, command: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._send(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, command: Any) -> bool:
        try:
            await self.link.send(command)
        except DomainError as exc:
            log.warning("event=agent_command_refused session=%s command=%s error=%r",
                        self.link.session_id, command.name, str(exc))
            return False
        return True

    # ---- the process manager's requests ---------------------------------------------------

    async def _follow(self, after: int) -> None:
        try:
            async for request in self.link.requests(after):
                if request.kind == "restart":
                    await self._restart(request)
                else:
                    await self._clean_up(request)
                    return
        except (DomainError, OSError) as exc:
            # The agent goes on talking; it no longer performs requests, which the service
            # sees as restarts nobody answered.
            log.error("event=agent_requests_lost session=%s error=%r", self.link.session_id,
                      str(exc))

    async def _restart(self, request: Request) -> None:
        claim = ClaimPipelineRestart(request_id=request.request_id, agent=self.agent_id)
        try:
            await self.link.send(claim)
        except DomainError as exc:
            log.info("event=pipeline_restart_skipped session=%s request=%s reason=%r",
                     self.link.session_id, request.request_id, str(exc))
            return
        log.info("event=pipeline_restart session=%s request=%s restart=%d agent=%s",
                 self.link.session_id, request.request_id, request.restart, self.agent_id)
        error: str | None = None
        try:
            async with self._busy:
                await self.restart(self.session)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        self.restarts.append((request.request_id, error))
        log.info("event=pipeline_restart_done session=%s request=%s outcome=%s error=%r",
                 self.link.session_id, request.request_id,
                 "failed" if error else "restarted", error)
        await self._send(FinishPipelineRestart(request_id=request.request_id, error=error))

    async def _clean_up(self, request: Request) -> None:
        log.info("event=cleanup session=%s request=%s action=stop_agent_session",
                 self.link.session_id, request.request_id)
        if self.monitor is not None:
            self.monitor.detach()
        await self.session.aclose()
        self.cleaned_up.set()


async def attach(
    session: AgentSession,
    link: SessionLink,
    *,
    room: rtc.Room | None = None,
    participant: str | None = None,
    clock: AsyncClock | None = None,
    agent_id: str | None = None,
    restart: Restart = restart_audio_path,
    after: int = 0,
) -> Attachment:
    """Attach clara-es to `session` (and its `room`, watching `participant` there), sending
    facts and following requests through `link`. Requests recorded after stream version
    `after` are performed; older ones that are no longer pending are refused by the session
    when claimed, so following from 0 is safe."""
    monitor = None
    if room is not None:
        if participant is None:
            raise ValueError("a room is watched for one participant: give its identity")
        monitor = AgentMonitor(link, link.session_id, clock or AsyncSystemClock(),
                               participant=participant)
        monitor.attach(room)
    attachment = Attachment(session, link, agent_id=agent_id or default_agent_id(),
                            restart=restart, monitor=monitor)
    attachment.start(after)
    return attachment
