# ruff: noqa: F811  (pytest fixtures imported from http_helpers)
"""A livekit-agents AgentSession in its own OS process, attached over HTTP to the service.

The test process serves the HTTP API (no process manager: the test asks for the restart and
the cleanup as the process manager would) and the agent process performs them.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from tests.support.optional import AGENTS_MISSING, livekit_agents_missing

if livekit_agents_missing():
    pytest.skip(AGENTS_MISSING, allow_module_level=True)

from clara_es.application import VoiceSessions
from clara_es.domain import commands
from clara_es.http import Service
from clara_es.http.auth import Role
from tests.support.http_service import (  # noqa: F401
    base_url,
    client,
    command,
    service,
    start_session,
    token,
    wait_until,
)
from tests.support.livekit_sdk import recorded
from tests.support.scenarios import poor

ROOT = Path(__file__).resolve().parents[2]


class AgentProcess:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix: str, timeout: float = 60) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"the agent process never printed {prefix!r}") from None
            if line.startswith(prefix):
                return line


@contextmanager
def agent_process(base_url: str, session_id: str, agent_id: str) -> Iterator[AgentProcess]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.agent_process", base_url,
         token(Role.AGENT, "agent-1"), session_id, agent_id],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, text=True,
    )
    try:
        agent = AgentProcess(proc)
        agent.expect("ready", timeout=120)
        yield agent
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def connected(client: httpx.Client) -> str:
    session_id = start_session(client)
    command(client, session_id, "connect")
    command(client, session_id, "connected")
    return session_id


def types(app: VoiceSessions, session_id: UUID) -> list[str]:
    return [kind for kind, _ in recorded(app, session_id)]


def test_the_agent_process_restarts_its_pipeline_and_stops_on_cleanup(
    client: httpx.Client, service: Service, base_url: str
) -> None:
    session_id = connected(client)
    sid = UUID(session_id)
    app = service.app
    with agent_process(base_url, session_id, "agent-process") as agent:
        poor(app, sid)
        app.handle(commands.RequestPipelineRestart(cap=3), sid)
        requested = list(app.repository.event_store.get(sid))[-1]
        line = agent.expect("restarted")
        assert line == f"restarted {requested.request_id} ok"  # type: ignore[attr-defined]
        wait_until(lambda: "PipelineRestarted" in types(app, sid), what="the outcome recorded")
        claimed = [e for e in app.repository.event_store.get(sid)][-2]
        assert claimed.agent == "agent-process"  # type: ignore[attr-defined]

        app.handle(commands.RequestCleanup(reason="the user is gone"), sid)
        agent.expect("stopped")
        assert agent.proc.wait(timeout=30) == 0
        wait_until(lambda: "AgentSessionClosed" in types(app, sid), what="the session's close")

