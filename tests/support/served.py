"""`clara-es serve` as a user runs it, in a subprocess on a SQLite file: for tests that need the
service on its real clock (a browser's facts carry the real time) or in another network
namespace. Stopped with SIGTERM (killed if it does not stop) when the test is done."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from clara_es.adapters.store import Store
from tests.support.http_service import API_KEY, API_SECRET
from tests.support.waiting import wait_until

KEYS = {"CLARA_ES_LIVEKIT_API_KEY": API_KEY, "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def served(
    db: Path | Store, *, host: str = "127.0.0.1", port: int | None = None,
    log: Path | None = None, prefix: Sequence[str] = (), ready: Callable[[str], bool] = answers,
    settings: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Yields the base URL once `ready(url)`; `db` is a SQLite file or any store, `settings`
    CLARA_ES_<NAME> values; `prefix` runs serve inside something (for example `ip netns exec
    NAME`). Its output goes to `log` (beside a SQLite file by default)."""
    port = port or free_port()
    url = f"http://{host}:{port}"
    database = db.url if isinstance(db, Store) else f"sqlite:///{db}"
    env = {**os.environ, **KEYS, "CLARA_ES_DATABASE_URL": database,
           **{f"CLARA_ES_{name.upper()}": value for name, value in (settings or {}).items()}}
    if log is None:
        assert isinstance(db, Path), "a log file is needed for a store that is not a file"
        log = db.with_suffix(".serve.log")
    with log.open("a") as out:
        server = subprocess.Popen(
            [*prefix, sys.executable, "-m", "clara_es", "serve", "--host", host,
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    try:
        wait_until(lambda: ready(url) or server.poll() is not None, timeout=60,
                   what=f"clara-es serve to answer at {url}")
        if server.poll() is not None:
            raise AssertionError(f"clara-es serve exited {server.returncode}:\n{log.read_text()}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
