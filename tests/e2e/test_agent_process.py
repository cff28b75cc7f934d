
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

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import commands
from clara_es.http import Service
from clara_es.http.auth import Role
from tests.support.http_service import (
    AGENT,
    CLIENT,
    ROOM,
    USER,
    command,
    start_session,
    token,
)
from tests.support.livekit_sdk import recorded
from tests.support.scenarios import poor
from tests.support.serve_process import serve_process
from tests.support.waiting import wait_until

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



def test_serve_and_an_agent_process_restart_then_the_agent_dies_and_nobody_answers(
    store: Store, tmp_path: Path
) -> None:
    """`clara-es serve` in one process, the agent in another: sustained poor quality is a
    restart the agent performs; once the agent is killed, the next restarts fail with "no
    agent answered" at their deadline, the cap is reached, and the session is cleaned up."""
    settings = {"poor_window_s": "1", "pipeline_restart_timeout_s": "3",
                "pipeline_restart_cap": "2", "poll_interval_s": "0.05"}
    with serve_process(store, tmp_path / "serve.log", **settings) as serve, \
            httpx.Client(base_url=serve.url, timeout=10) as http:
        sid = http.post("/api/sessions", json={"room": ROOM, "participant": USER},
                        headers=CLIENT).json()["session_id"]
        for name in ("connect", "connected"):
            assert command(http, sid, name).status_code == 200

        def quality(value: str) -> None:
            body = {"participant": USER, "quality": value}
            assert command(http, sid, "quality", body, headers=AGENT).status_code == 200

        with agent_process(serve.url, sid, "agent-process") as agent:
            quality("poor")
            assert agent.expect("restarted").endswith(" ok")
            wait_until(lambda: "PipelineRestarted" in serve.types(sid), timeout=30,
                       what="the agent's restart recorded")
            agent.proc.send_signal(signal.SIGKILL)
            agent.proc.wait(timeout=30)
        quality("good")
        quality("lost")
        wait_until(lambda: "CleanupSkipped" in serve.types(sid), timeout=60,
                   what="no agent answering, the cap and the cleanup")
        history = serve.history(sid)
    rows = [(r["type"], r["details"]) for r in history]
    claimed = next(d for t, d in rows if t == "PipelineRestartClaimed")
    assert claimed["agent"] == "agent-process"
    failed = [d["error"] for t, d in rows if t == "PipelineRestartFailed"]
    assert failed == ["no agent answered", "no agent answered"]
    types = [t for t, _ in rows]
    assert types.count("PipelineRestarted") == 1
    assert types[-3:] == ["Failed", "CleanupRequested", "CleanupSkipped"]
    assert "2 pipeline restarts did not bring the participant back" in rows[-2][1]["reason"]
    logged = serve.logged()
    assert f"event=pipeline_restart session={sid} restart=1 outcome=restarted" in logged
    assert f"event=pipeline_restart session={sid} restart=2 outcome=failed" in logged
    assert f"event=cleanup session={sid}" in logged
