"""clara_es.agents on a real livekit-agents AgentSession (fake STT, LLM and TTS, no room),
linked straight to the store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from tests.support.optional import AGENTS_MISSING, livekit_agents_missing

if livekit_agents_missing():
    pytest.skip(AGENTS_MISSING, allow_module_level=True)

from livekit.agents import Agent, AgentSession, stt

from clara_es.adapters.livekit import AsyncVirtualClock
from clara_es.agents import Attachment, StoreLink, attach
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock, commands
from tests.support.agent_plugins import FakeLLM, FakeSTT, FakeTTS
from tests.support.livekit_sdk import on_virtual_time, recorded, run
from tests.support.scenarios import connected, poor


def poor_session(app: VoiceSessions) -> UUID:
    session_id = connected(app)
    poor(app, session_id)
    return session_id


def types(app: VoiceSessions, session_id: UUID) -> list[str]:
    return [kind for kind, _ in recorded(app, session_id)]


async def until(timers: AsyncVirtualClock, condition: Callable[[], Any], turns: int = 400) -> None:
    """Advance the links' poll clock until `condition` holds; the AgentSession's own tasks run
    in between (a bounded count of event-loop turns, no wall-clock wait)."""
    for _ in range(turns):
        if condition():
            return
        await timers.advance(0.5)
    raise AssertionError("condition never held")


async def agent_session() -> tuple[AgentSession, FakeSTT]:
    recognizer = FakeSTT()
    session = AgentSession(stt=recognizer, llm=FakeLLM(), tts=FakeTTS())
    await session.start(Agent(instructions="You are a test."))
    return session, recognizer


async def attached(
    app: VoiceSessions, clock: VirtualClock, **options: Any
) -> tuple[UUID, AsyncVirtualClock, AgentSession, FakeSTT, Attachment]:
    """A poor-quality session with one agent ("agent-a") attached to it."""
    session_id = poor_session(app)
    timers = AsyncVirtualClock(clock)
    session, recognizer = await agent_session()
    clara = await attach(session, StoreLink(app, session_id, timers), agent_id="agent-a",
                         **options)
    return session_id, timers, session, recognizer, clara


@on_virtual_time
async def test_a_requested_restart_is_claimed_performed_and_reported(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, timers, session, recognizer, clara = await attached(app, clock)
    streams = recognizer.streams
    app.handle(commands.RequestPipelineRestart(cap=3), session_id)
    await until(timers, lambda: "PipelineRestarted" in types(app, session_id))
    await until(timers, lambda: recognizer.streams > streams)
    assert types(app, session_id)[-3:] == [
        "PipelineRestartRequested", "PipelineRestartClaimed", "PipelineRestarted",
    ]
    requested = [e for e in app.repository.event_store.get(session_id)][-3]
    assert clara.restarts == [(requested.request_id, None)]  # type: ignore[attr-defined]
    await clara.aclose()
    await session.aclose()



@on_virtual_time
async def test_two_agents_never_both_restart(app: VoiceSessions, clock: VirtualClock) -> None:
    session_id = poor_session(app)
    timers = AsyncVirtualClock(clock)
    first, _ = await agent_session()
    second, _ = await agent_session()
    clara: list[Attachment] = [
        await attach(first, StoreLink(app, session_id, timers), agent_id="agent-a"),
        await attach(second, StoreLink(app, session_id, timers), agent_id="agent-b"),
    ]
    app.handle(commands.RequestPipelineRestart(cap=3), session_id)
    await until(timers, lambda: "PipelineRestarted" in types(app, session_id))
    await timers.advance(5)
    assert types(app, session_id).count("PipelineRestartClaimed") == 1
    assert sum(len(c.restarts) for c in clara) == 1
    for attachment, session in zip(clara, (first, second), strict=True):
        await attachment.aclose()
        await session.aclose()



def test_a_failing_restart_is_reported_with_its_error(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    async def broken(session: AgentSession) -> None:
        raise RuntimeError("audio device gone")

    async def main() -> None:
        session_id, timers, session, _, clara = await attached(app, clock, restart=broken)
        app.handle(commands.RequestPipelineRestart(cap=3), session_id)
        await until(timers, lambda: "PipelineRestartFailed" in types(app, session_id))
        assert types(app, session_id)[-2:] == ["PipelineRestartClaimed", "PipelineRestartFailed"]
        failed = list(app.repository.event_store.get(session_id))[-1]
        assert failed.error == "RuntimeError: audio device gone"  # type: ignore[attr-defined]
        await clara.aclose()
        await session.aclose()

    run(main)


@on_virtual_time
async def test_plugin_errors_and_close_are_recorded_and_cleanup_stops_the_session(
    app: VoiceSessions, clock: VirtualClock
) -> None:
    session_id, timers, _, recognizer, clara = await attached(app, clock)
    recognizer.emit("error", stt.STTError(
        timestamp=time.time(), label=recognizer.label,
        error=ConnectionError("stt socket closed"), recoverable=True,
    ))
    await until(timers, lambda: "AgentErrorReported" in types(app, session_id))
    error = [e for e in app.repository.event_store.get(session_id)][-1]
    assert (error.source, error.error, error.recoverable) == (  # type: ignore[attr-defined]
        "stt", "stt socket closed", True,
    )
    app.handle(commands.RequestCleanup(reason="test"), session_id)
    await timers.advance(1)  # the link's next poll sees the request
    # AgentSession.aclose() drains on the wall clock (livekit-agents' own timeouts).
    await asyncio.wait_for(clara.cleaned_up.wait(), timeout=30)
    await until(timers, lambda: "AgentSessionClosed" in types(app, session_id))
    closed = [e for e in app.repository.event_store.get(session_id)][-1]
    assert closed.reason == "user_initiated"  # type: ignore[attr-defined]
    await clara.aclose()

