"""The fault campaign's PostgreSQL part: `clara-es serve` under HTTP load on a throwaway
PostgreSQL cluster of its own (initdb into a temporary folder, a free port, never the shared
server), restarted with `pg_ctl restart -m fast` in the middle of the load. Afterwards every
acknowledged command's event is in its stream, `replay --verify --all` passes, the views equal
their rebuild and no due work is left behind; and the recovery time is measured: from the
moment PostgreSQL accepts connections again to the first command answered after it.

    python -m tests.e2e.pg_restart --restarts 5 --load-s 20 --seed 1

A short version runs in the tests (tests/e2e/test_pg_restart.py). Load goes only to the
loopback address of the server this script starts; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from clara_es.adapters.store import Store
from clara_es.http.auth import Role, mint
from tests.e2e.fault_campaign import KEY, ROOM, SECRET
from tests.support.campaign_checks import lost, views_equal_rebuild
from tests.support.served import free_port, served

PG_BIN = Path(os.environ.get("CLARA_ES_PG_BIN", "/usr/lib/postgresql/15/bin"))
SETTINGS = {"livekit_api_key": KEY, "livekit_api_secret": SECRET, "log_level": "warning",
            "pool_size": "2", "pool_max_overflow": "2", "store_timeout_s": "3"}


def missing_initdb() -> str | None:
    """Why a throwaway cluster cannot be made here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"no initdb in {PG_BIN} (install PostgreSQL 15, or set CLARA_ES_PG_BIN)"
    return None


@dataclass
class Cluster:
    folder: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"),
                        "-w", "-t", str(int(timeout)), *args], check=True,
                       capture_output=True, timeout=timeout + 10)

    def restart(self) -> None:
        self.ctl("restart", "-m", "fast", "-l", str(self.folder / "server.log"))


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster in a new temporary folder on a free loopback port; initdb refuses
    to run as root, so as root the cluster belongs to the `postgres` OS user."""
    folder = Path(tempfile.mkdtemp(prefix="clara-es-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-A",
                        "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=300)
        options = (f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} "
                   "-c max_connections=60 -c shared_buffers=16MB")
        cluster = Cluster(folder, port, as_user)
        cluster.ctl("start", "-o", options, "-l", str(folder / "server.log"))
        try:
            yield cluster
        finally:
            cluster.ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Figures:
    restarts: int = 0
    acknowledged: int = 0
    refused: int = 0  # answered, not 2xx (503 while the store was away, mostly)
    unanswered: int = 0  # no answer at all (a timeout)
    lost: int = 0
    pg_restart_s: list[float] = field(default_factory=list)  # pg_ctl restart, stop to ready
    recovery_s: list[float] = field(default_factory=list)  # ready -> first command answered
    # The longest time no client got an answer, around each restart (what a user notices).
    longest_gap_s: list[float] = field(default_factory=list)
    verified: bool = False
    views_equal_rebuild: bool = False
    due_backlog: int = -1  # due jobs past their time that nobody works on, at the end


class Load:
    """Clients starting sessions and reporting connect/connected/disconnected in a loop, each
    answered command remembered with its version and the time it was answered."""

    def __init__(self, url: str, seed: int, clients: int = 3) -> None:
        self.url = url
        self.seed = seed
        self.clients = clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: dict[str, int] = {}
        self.answered_at: list[tuple[float, float]] = []  # (sent, answered) of each 2xx
        self.refused = 0
        self.unanswered = 0
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                self._session(http, rng)

    def _session(self, http: httpx.Client, rng: random.Random) -> None:
        participant = f"user-{rng.randrange(10**9)}"
        headers = {"Authorization": "Bearer " + mint(KEY, SECRET, Role.CLIENT, participant, ROOM)}
        steps = [("", {"room": ROOM, "participant": participant}), ("connect", {}),
                 ("connected", {}), ("disconnected", {"reason": "drop"})]
        session_id = ""
        for route, body in steps:
            path = "/api/sessions" + (f"/{session_id}/{route}" if route else "")
            sent = time.monotonic()
            try:
                response = http.post(path, json=body, headers=headers)
            except httpx.HTTPError:
                with self.lock:
                    self.unanswered += 1
                return
            answered = time.monotonic()
            if response.status_code not in (200, 201):
                with self.lock:
                    self.refused += 1
                if response.status_code == 503:
                    self.stop.wait(0.05)  # as a client honouring Retry-After, briefly
                return
            state = response.json()
            session_id = state["session_id"]
            with self.lock:
                self.acknowledged[session_id] = max(self.acknowledged.get(session_id, 0),
                                                    state["version"])
                self.answered_at.append((sent, answered))

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between two answers (to any client) from `start` to `end`."""
        with self.lock:
            times = sorted(done for _, done in self.answered_at)
        before = [t for t in times if t <= start][-1:]
        inside = [t for t in times if start < t <= end]
        points = [*before, *inside] or [start]
        return max((b - a for a, b in pairwise(points)), default=0.0)

    def first_answer_sent_after(self, instant: float, within: float = 120) -> float:
        """When the first command sent after `instant` was answered (waits for one)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self.lock:
                after = [done for sent, done in self.answered_at if sent >= instant]
            if after:
                return min(after)
            time.sleep(0.01)
        raise RuntimeError(f"no command was answered within {within} s after the restart")


def clara_es(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLARA_ES_DATABASE_URL": url,
           **{f"CLARA_ES_{name.upper()}": value for name, value in SETTINGS.items()}}
    return subprocess.run([sys.executable, "-m", "clara_es", *args], env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def settled(base: str, seconds: float = 180) -> dict[str, Any]:
    """/readyz once every view has caught up with the log and no due job waits past its time
    unclaimed (no session is stuck); the last answer if that never happens."""
    deadline = time.monotonic() + seconds
    ready: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{base}/readyz", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            ready = {}
        lag = ready.get("projection_lag")
        if lag and not any(lag.values()) and ready.get("due_backlog") == 0:
            return ready
        time.sleep(0.1)
    return ready


def campaign(restarts: int, seed: int, load_s: float, log_folder: Path) -> Figures:
    figures = Figures()
    rng = random.Random(seed)
    with throwaway_cluster() as cluster:
        store = Store.from_url(cluster.url)
        with served(store, log=log_folder / "serve.log", settings=SETTINGS) as base:
            with Load(base, seed) as load:
                for _ in range(restarts):
                    time.sleep(rng.uniform(0.3, load_s))  # the load runs in its threads
                    began = time.monotonic()
                    cluster.restart()
                    ready = time.monotonic()
                    figures.restarts += 1
                    figures.pg_restart_s.append(round(ready - began, 3))
                    answered = load.first_answer_sent_after(ready)
                    figures.recovery_s.append(round(answered - ready, 3))
                    figures.longest_gap_s.append(round(load.longest_gap(began, answered), 3))
                time.sleep(load_s)
            ready = settled(base)
            figures.due_backlog = ready.get("due_backlog", -1)
        figures.acknowledged = sum(1 for _ in load.answered_at)
        figures.refused, figures.unanswered = load.refused, load.unanswered
        figures.lost = lost(Store.from_url(cluster.url), load.acknowledged)
        figures.verified = clara_es(cluster.url, "replay", "--verify", "--all").returncode == 0
        figures.views_equal_rebuild = views_equal_rebuild(
            lambda *args: clara_es(cluster.url, *args))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load-s", type=float, default=20.0)
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    reason = missing_initdb()
    if reason:
        sys.exit(f"pg_restart: {reason}")
    figures = campaign(args.restarts, args.seed, args.load_s, args.logs)
    print(json.dumps(figures.__dict__, indent=2))
    ok = figures.lost == 0 and figures.verified and figures.views_equal_rebuild
    sys.exit(0 if ok and figures.due_backlog == 0 else 1)


if __name__ == "__main__":
    main()
