# ruff: noqa: F811  (pytest fixtures imported from http_helpers)
"""clara_es.agents over HTTP only: a real AgentSession (fake STT, LLM and TTS) reaches the
service through its routes, learns requests from the live feed, and reports outcomes."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

if importlib.util.find_spec("livekit.agents") is None:
    if os.environ.get("CLARA_ES_REQUIRE_AGENTS"):
        raise ImportError("livekit-agents is required here: pip install -e '.[dev,agents]'")
    pytest.skip("livekit-agents is not installed: pip install -e '.[dev,agents]'",
                allow_module_level=True)

from livekit.agents import Agent, AgentSession, stt

from clara_es.agents import HttpLink, attach
from clara_es.domain import Quality, commands
from clara_es.http import Service
from clara_es.http.auth import Role
from tests.support.agent_plugins import FakeLLM, FakeSTT, FakeTTS
from tests.support.http_service import base_url, client, command, service, start_session, token  # noqa: F401
from tests.support.livekit_sdk import recorded, run


async def eventually(condition: Callable[[], Any], what: str, timeout: float = 30) -> None:
    """Wait for the service (another thread) to show `condition`; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def test_restart_and_errors_travel_over_http(
    client: httpx.Client, service: Service, base_url: str
) -> None:
    session_id = UUID(start_session(client))
    command(client, str(session_id), "connect")
    command(client, str(session_id), "connected")
    app = service.app

    def types() -> list[str]:
        return [kind for kind, _ in recorded(app, session_id)]

    async def main() -> None:
        recognizer = FakeSTT()
        session = AgentSession(stt=recognizer, llm=FakeLLM(), tts=FakeTTS())
        await session.start(Agent(instructions="You are a test."))
        link = HttpLink(base_url, token(Role.AGENT, "agent-1"), session_id)
        clara = await attach(session, link, agent_id="agent-a")
        # What the process manager does after sustained poor quality.
        app.handle(commands.ChangeQuality(participant="alice", quality=Quality.POOR), session_id)
        app.handle(commands.ConfirmPoorQuality(participant="alice"), session_id)
        app.handle(commands.RequestPipelineRestart(cap=3), session_id)
        await eventually(lambda: "PipelineRestarted" in types(), "the restart's outcome")
        assert types()[-3:] == [
            "PipelineRestartRequested", "PipelineRestartClaimed", "PipelineRestarted",
        ]
        stream = list(app.repository.event_store.get(session_id))
        assert {e.actor for e in stream[-2:]} == {"agent"}
        assert stream[-2].agent == "agent-a"  # type: ignore[attr-defined]

        recognizer.emit("error", stt.STTError(
            timestamp=time.time(), label=recognizer.label,
            error=ConnectionError("stt socket closed"), recoverable=False,
        ))
        await eventually(lambda: "AgentErrorReported" in types(), "the STT error")
        error = list(app.repository.event_store.get(session_id))[-1]
        assert (error.source, error.recoverable) == ("stt", False)  # type: ignore[attr-defined]
        await clara.aclose()
        await session.aclose()
        await link.aclose()

    run(main)


def test_a_second_claim_over_http_is_refused(client: httpx.Client, service: Service) -> None:
    session_id = start_session(client)
    command(client, session_id, "connect")
    command(client, session_id, "connected")
    app = service.app
    app.handle(commands.ChangeQuality(participant="alice", quality=Quality.POOR), UUID(session_id))
    app.handle(commands.ConfirmPoorQuality(participant="alice"), UUID(session_id))
    _, events = app.handle_with_events(commands.RequestPipelineRestart(cap=3), UUID(session_id))
    request_id = events[-1].request_id  # type: ignore[attr-defined]
    agent = {"Authorization": f"Bearer {token(Role.AGENT, 'agent-1')}"}
    url = f"/api/sessions/{session_id}/pipeline-restart-claim"
    first = client.post(url, json={"request_id": request_id, "agent": "a"}, headers=agent)
    again = client.post(url, json={"request_id": request_id, "agent": "a"}, headers=agent)
    other = client.post(url, json={"request_id": request_id, "agent": "b"}, headers=agent)
    assert (first.status_code, again.status_code, other.status_code) == (200, 200, 409)
    assert "already claimed by a" in other.json()["detail"]
    done = client.post(f"/api/sessions/{session_id}/pipeline-restart-finished",
                       json={"request_id": request_id}, headers=agent)
    assert done.status_code == 200
    assert recorded(app, UUID(session_id))[-2:] == [
        ("PipelineRestartClaimed", None), ("PipelineRestarted", None),
    ]
