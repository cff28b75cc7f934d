"""`clara-es serve` as a subprocess on a free loopback port, its log in a file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from clara_es.adapters.store import Store
from clara_es.http.auth import Role
from tests.support.http_service import API_KEY, API_SECRET, bearer, wait_until

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"CLARA_ES_LIVEKIT_API_KEY": API_KEY, "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServeProcess:
    url: str
    log: Path
    proc: subprocess.Popen[str]

    def history(self, session_id: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/sessions/{session_id}/history",
                             params={"limit": 10_000}, headers=bearer(Role.READ), timeout=10)
        response.raise_for_status()
        return list(response.json())

    def types(self, session_id: str) -> list[str]:
        return [row["type"] for row in self.history(session_id)]

    def logged(self) -> str:
        return self.log.read_text()


@contextmanager
def serve_process(store: Store, log: Path, **settings: str) -> Iterator[ServeProcess]:
    """`serve` on `store` with CLARA_ES_<NAME> settings, answering /healthz; stopped with
    SIGTERM (SIGKILL if it does not stop) at the end."""
    port = free_port()
    env = {**os.environ, **KEYS, "CLARA_ES_DATABASE_URL": store.url,
           **{f"CLARA_ES_{name.upper()}": value for name, value in settings.items()}}
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clara_es", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    serve = ServeProcess(f"http://127.0.0.1:{port}", log, proc)
    try:
        wait_until(lambda: up(serve.url) or proc.poll() is not None, timeout=60,
                   what="clara-es serve to answer /healthz")
        assert proc.poll() is None, serve.logged()
        yield serve
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
