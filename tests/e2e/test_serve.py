"""`clara-es serve` as a user runs it: a real process on a real port, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from tests.support.cli_runner import clara_es
from tests.support.http_service import API_KEY, API_SECRET
from tests.support.served import answers, free_port
from tests.support.waiting import wait_until

KEYS = {"CLARA_ES_LIVEKIT_API_KEY": API_KEY, "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET}


def test_serve_answers_and_stops_on_sigterm_with_nothing_lost(store: Store, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **KEYS, "CLARA_ES_DATABASE_URL": store.url}
    server = subprocess.Popen(
        [sys.executable, "-m", "clara_es", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url), timeout=30, what="clara-es serve to answer /healthz")
        token = clara_es("token", "--role", "client", "--identity", "alice", "--room", "r1",
                         env={**KEYS}).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            state = http.post("/api/sessions", json={"room": "r1", "participant": "alice"}).json()
            session_id = state["session_id"]
            for name in ("connect", "connected", "disconnected"):
                assert http.post(f"/api/sessions/{session_id}/{name}", json={}).status_code == 200
            assert http.get("/").text.count("Start Session") == 1
            # A live feed stays open while the server is told to stop: it must not hold it up.
            feed: dict[str, Any] = {}
            reader = threading.Thread(target=_follow, args=(url, session_id, headers, feed))
            reader.start()
            wait_until(lambda: feed.get("first"), what="the live feed's first event")
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
        reader.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "error" not in output.lower()
    app = VoiceSessions(store.eventsourcing_env())
    try:
        assert app.session(UUID(session_id)).version == 5  # started ... ReconnectScheduled
    finally:
        app.close()


def test_serve_runs_the_process_manager(store: Store) -> None:
    """An ended session is cleaned up by the process manager inside `serve` (no LiveKit here,
    so the cleanup is recorded as skipped), and the metrics count the effect."""
    port = free_port()
    env = {**os.environ, **KEYS, "CLARA_ES_DATABASE_URL": store.url}
    server = subprocess.Popen(
        [sys.executable, "-m", "clara_es", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url), timeout=30, what="clara-es serve to answer /healthz")
        headers = {"Authorization": "Bearer " + clara_es(
            "token", "--role", "agent", "--identity", "agent", "--room", "r1", env=KEYS
        ).stdout.strip()}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            session_id = http.post("/api/sessions", json={"room": "r1", "participant": "bob"}
                                   ).json()["session_id"]
            for name in ("connect", "connected", "end"):
                assert http.post(f"/api/sessions/{session_id}/{name}", json={}).status_code == 200

            def cleaned_up() -> bool:
                history = http.get(f"/api/sessions/{session_id}/history").json()
                return "CleanupSkipped" in [e["type"] for e in history]

            wait_until(cleaned_up, timeout=30, what="the process manager's cleanup")
            metrics = http.get("/metrics").text
            assert 'clara_es_effects_total{outcome="CleanupSkipped"} 1.0' in metrics
    finally:
        server.terminate()
        server.wait(timeout=30)


def _follow(url: str, session_id: str, headers: dict[str, str], feed: dict[str, Any]) -> None:
    try:
        with httpx.stream("GET", f"{url}/api/sessions/{session_id}/live", headers=headers,
                          timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    feed["first"] = line
    except httpx.HTTPError as exc:
        feed["error"] = exc
