"""`clara-es serve --workers N`: N server processes on one port and one PostgreSQL database."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clara_es.adapters.store import Store
from clara_es.http.auth import Role
from tests.support.http_service import bearer
from tests.support.twirp_server import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parent.parent.parent
KEYS = {"CLARA_ES_LIVEKIT_API_KEY": API_KEY, "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET}


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_ES_")}
    return env | KEYS | {"CLARA_ES_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
                         "CLARA_ES_POOL_SIZE": "1", "CLARA_ES_POOL_MAX_OVERFLOW": "1"}


@pytest.mark.postgres
def test_two_workers_serve_one_port_and_stop_on_sigterm(
    postgres_store: Store, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "clara_es", "serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT, env=env_for(postgres_store.url), stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while log.read_text().count("Application startup complete") < 2:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        auth = bearer(Role.CLIENT, "alice", "room-1")
        with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
            assert http.get("/readyz").status_code == 200
            started = http.post("/api/sessions", json={"room": "room-1", "participant": "alice"})
            assert started.status_code == 201
            session_id = started.json()["session_id"]
            for _ in range(4):  # whichever worker answers reads the same store
                assert http.get(f"/api/sessions/{session_id}").json()["connection_state"] \
                    == "idle"
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    text = log.read_text()
    assert server.returncode == 0, text
    assert len(set(re.findall(r"Started server process \[(\d+)\]", text))) == 2
    assert "Traceback" not in text


def test_workers_need_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clara_es", "serve", "--workers", "2", "--db",
         str(tmp_path / "one.db")],
        cwd=ROOT, env=env_for("sqlite:///unused.db"), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "clara-es: error: --workers needs PostgreSQL: SQLite runs one process per file"]
