"""The HTTP service under load: status reads and commands per second, and 500 live feeds.

    python -m bench.http [--seconds 5] [--workers 16] [--feeds 500] [--rounds 3] [--json]

For each store (SQLite file; PostgreSQL if reachable) `clara-es serve` runs in its own process
(uvicorn, one worker, the projection runners inside); this process is the clients (httpx).
- Status read: GET /api/sessions/{id} (the UI-state view) by `--workers` concurrent clients.
  Baseline, same run: the same read as a bare in-process call (the view query, no HTTP).
- Command: POST disconnected / attempt-started / reconnected round-robin over the sessions.
  Baseline, same run: the same commands called in-process on VoiceSessions.
- Live feeds: `--feeds` SSE clients, one per session, all open at once; every session then
  goes through `--rounds` outages (4 events each) sent over HTTP. Each client must see every
  version of its session in order; latency = delivery time - the event's `updated_at` (the
  server's clock at the decision, just before the append).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from bench.common import backends, fresh_store
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import SystemClock, commands
from clara_es.http.auth import Role, mint
from clara_es.http.queries import Reads
from projections import db as views_db

KEY, SECRET = "APIbench", "a-benchmark-secret-of-at-least-32-characters"
ROOM = "bench"
AGENT = {"Authorization": f"Bearer {mint(KEY, SECRET, Role.AGENT, 'agent', ROOM)}"}
READER = {"Authorization": f"Bearer {mint(KEY, SECRET, Role.READ, 'bench')}"}
START_VERSION = 3  # SessionStarted, Connecting, Connected
CYCLE = (("disconnected", {"reason": "bench"}), ("attempt-started", {"attempt": 1}),
         ("reconnected", {}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, store: Store) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CLARA_ES_DATABASE_URL": store.url,
               "CLARA_ES_LIVEKIT_API_KEY": KEY, "CLARA_ES_LIVEKIT_API_SECRET": SECRET}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clara_es", "serve", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("clara-es serve did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def setup_sessions(app: VoiceSessions, n: int) -> list[UUID]:
    ids = []
    for k in range(n):
        start = commands.StartSession(room=ROOM, participant=f"user-{k}")
        session_id = app.handle(start).session_id
        app.handle(commands.Connect(), session_id)
        app.handle(commands.MarkConnected(), session_id)
        ids.append(session_id)
    return ids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, float] = {}


async def timed(seconds: float, workers: int, job: Any, label: str = "") -> float:
    """Run `job(worker, i)` in `workers` loops for `seconds`; requests per second.

    With a label, records the CPU ms per request of the server and of this client process.
    """
    server_before = cpu_seconds(SERVER_PID[0]) if SERVER_PID else 0.0
    client_before = time.process_time()
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(worker: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            await job(worker, i)
            i += 1
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    rate = done / (time.perf_counter() - start)
    if label and SERVER_PID:
        CPU[f"{label}_server_cpu_ms"] = 1000 * (cpu_seconds(SERVER_PID[0]) - server_before) / done
        CPU[f"{label}_client_cpu_ms"] = 1000 * (time.process_time() - client_before) / done
    return rate


SERVER_PID: list[int] = []


def in_process_rate(seconds: float, call: Any) -> float:
    done, stop = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < stop:
        call(done)
        done += 1
    return done / (time.perf_counter() - start)


async def http_rates(url: str, ids: list[UUID], seconds: float, workers: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def read(worker: int, i: int) -> None:
            r = await http.get(f"/api/sessions/{ids[(worker * 7919 + i) % len(ids)]}",
                               headers=READER)
            assert r.status_code == 200, r.text

        async def health(worker: int, i: int) -> None:
            assert (await http.get("/healthz")).status_code == 200

        floor = await timed(seconds, workers, health, "healthz")
        reads = await timed(seconds, workers, read, "read")
        per_worker = len(ids) // workers

        async def command(worker: int, i: int) -> None:
            session_id = ids[worker * per_worker + (i // 3) % per_worker]
            name, body = CYCLE[i % 3]
            r = await http.post(f"/api/sessions/{session_id}/{name}", json=body, headers=AGENT)
            assert r.status_code == 200, r.text

        command_rps = await timed(seconds, workers, command, "command")
    return {"healthz_rps": floor, "read_rps": reads, "command_rps": command_rps}


async def feeds(url: str, ids: list[UUID], rounds: int) -> dict[str, Any]:
    received: dict[UUID, list[tuple[int, float]]] = {i: [] for i in ids}
    opened = 0
    all_open = asyncio.Event()
    limits = httpx.Limits(max_connections=len(ids) + 50)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:

        # The sessions are connected and untouched: each cycle appends Disconnected +
        # ReconnectScheduled, ReconnectAttempted, Reconnected.
        target = START_VERSION + 4 * rounds

        async def follow(session_id: UUID) -> None:
            nonlocal opened
            async with http.stream("GET", f"/api/sessions/{session_id}/live",
                                   headers=READER) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        now = time.time()
                        state = json.loads(line[5:])
                        at = datetime.fromisoformat(state["updated_at"]).timestamp()
                        received[session_id].append((state["version"], now - at))
                        if state["version"] == START_VERSION:  # the current state, on opening
                            opened += 1
                            if opened == len(ids):
                                all_open.set()
                        if state["version"] >= target:
                            return

        tasks = [asyncio.create_task(follow(i)) for i in ids]
        await asyncio.wait_for(all_open.wait(), 120)
        sender = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=url, limits=sender, timeout=60) as poster:
            semaphore = asyncio.Semaphore(16)

            async def send(session_id: UUID, name: str, body: dict[str, Any]) -> None:
                async with semaphore:
                    r = await poster.post(f"/api/sessions/{session_id}/{name}", json=body,
                                          headers=AGENT)
                    assert r.status_code == 200, r.text

            for _ in range(rounds):
                for name, body in CYCLE:
                    await asyncio.gather(*(send(i, name, body) for i in ids))
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    complete = all([v for v, _ in received[i]] == list(range(START_VERSION, target + 1))
                   for i in ids)
    latencies = sorted(1000 * lat for i in ids for v, lat in received[i] if v > START_VERSION)
    return {
        "feeds": len(ids), "events_delivered": len(latencies), "every_change_seen": complete,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
    }


def bench(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(backend) as store:
        views_db.upgrade(store)
        app = VoiceSessions(store.eventsourcing_env(), clock=SystemClock())
        ids = setup_sessions(app, 200 + args.feeds)
        server = Server(store)
        SERVER_PID[:] = [server.process.pid]
        try:
            rates = asyncio.run(http_rates(server.url, ids[:200], args.seconds, args.workers))
            live = asyncio.run(feeds(server.url, ids[200:], args.rounds))
        finally:
            server.stop()
        views = views_db.engine(store)
        reads = Reads(app, views, SystemClock())
        direct_read = in_process_rate(args.seconds, lambda i: reads.status(ids[i % 200]))
        cycle = (
            commands.ReportDisconnected(reason="bench"),
            commands.StartAttempt(attempt=1),
            commands.ReportReconnected(),
        )
        spare = setup_sessions(app, 200)
        direct_command = in_process_rate(
            args.seconds, lambda i: app.handle(cycle[i % 3], spare[(i // 3) % len(spare)])
        )
        views.dispose()
        app.close()
    return {
        "backend": backend, "healthz_rps": round(rates["healthz_rps"]),
        "read_rps": round(rates["read_rps"]), "direct_read_per_s": round(direct_read),
        "read_ratio": round(rates["read_rps"] / direct_read, 3),
        "command_rps": round(rates["command_rps"]), "direct_command_per_s": round(direct_command),
        "command_ratio": round(rates["command_rps"] / direct_command, 3),
        **{k: round(v, 1) if isinstance(v, float) else v for k, v in live.items()},
        **{k: round(v, 2) for k, v in CPU.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [bench(b, args) for b in backends() if args.only in (None, b)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
