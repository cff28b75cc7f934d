"""The HTTP service under load: status reads and commands per second (live feeds: bench.feeds).

    python -m bench.http [--seconds 5] [--workers 16] [--serve-workers 1] [--json]

For each store (SQLite file; PostgreSQL if reachable) `clara-es serve` runs in its own process
(uvicorn, `--serve-workers` worker processes, PostgreSQL only above 1; the views and the process
manager inside), and beside it bench.bare_app, a bare FastAPI app on the same uvicorn with the
same number of workers; server CPU counts the worker processes too. The load generator is
wrk when it is installed (bench/load.py; else an asyncio httpx loop, named in the figures),
`--workers` connections.
- Status read: GET /api/sessions/{id} (the UI-state view). Baselines, same run: a bare
  FastAPI GET, and the same read as an in-process call (the view query, no HTTP).
- Command: POST disconnected / attempt-started / reconnected, each connection cycling over
  its own sessions. Baselines, same run: a bare FastAPI POST of the same bodies, the same
  commands in-process, and their sum (the floor: the command plus a bare endpoint).
  The in-process baselines are measured in `BASELINE_ROUNDS` short rounds before the servers
  start and as many after they stop (the machine's load moves during a run); the figure is
  the median of them all, `*_spread` gives the slowest and fastest round. Besides the rates,
  the CPU per request: serve's and the bare app's (from /proc, worker processes included) and
  the in-process call's (this process), and the ratios in CPU (`*_cpu_ratio_*`), which the
  machine's other work moves less than the rates.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any
from uuid import UUID

import httpx

from bench import load
from bench.common import backends, fresh_store
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import SystemClock, commands
from clara_es.http.auth import Role, mint
from clara_es.http.queries import Reads
from projections import db as views_db
from projections.supervisor import Supervisor

KEY, SECRET = "APIbench", "a-benchmark-secret-of-at-least-32-characters"
ROOM = "bench"
AGENT = {"Authorization": f"Bearer {mint(KEY, SECRET, Role.AGENT, 'agent', ROOM)}"}
READER = {"Authorization": f"Bearer {mint(KEY, SECRET, Role.READ, 'bench')}"}
CYCLE = (("disconnected", {"reason": "bench"}), ("attempt-started", {"attempt": 1}),
         ("reconnected", {}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, store: Store, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CLARA_ES_DATABASE_URL": store.url,
               "CLARA_ES_LIVEKIT_API_KEY": KEY, "CLARA_ES_LIVEKIT_API_SECRET": SECRET}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clara_es", "serve", "--port", str(self.port),
             "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.wait("/healthz")
        self.settled()

    def settled(self) -> None:
        """Wait for the views to reach the log (the baselines' own commands included), so
        their catch-up does not run during a measurement."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = httpx.get(f"{self.url}/readyz", timeout=10).json()
            if ready.get("projection_lag") and max(ready["projection_lag"].values()) == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("the views did not catch up within 120 s")

    def wait(self, path: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.process.args} did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


class BareServer(Server):
    """bench.bare_app on the same uvicorn: the HTTP floor."""

    def __init__(self, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_app", "--port", str(self.port),
             "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.wait("/openapi.json")


def setup_sessions(app: VoiceSessions, n: int) -> list[UUID]:
    ids = []
    for k in range(n):
        start = commands.StartSession(room=ROOM, participant=f"user-{k}")
        session_id = app.handle(start).session_id
        app.handle(commands.Connect(), session_id)
        app.handle(commands.MarkConnected(), session_id)
        ids.append(session_id)
    return ids


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far (Linux /proc) of a process and its child processes (the
    workers of `--workers N`)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat(int(entry))[1]) == pid:
                    pids.append(int(entry))
            except (OSError, IndexError):
                continue  # ended meanwhile
    total = 0
    for p in pids:
        try:
            fields = _stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


BASELINE_ROUNDS = 5  # before the servers start, and as many again after they stop


def in_process_rate(
    seconds: float, call: Any, start_at: int = 0
) -> tuple[float, float, int]:
    """Calls per second of `call(i)`, i counting from `start_at`; the CPU ms of this process
    per call (all its threads); and the next i."""
    done, stop = start_at, time.perf_counter() + seconds
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() < stop:
        call(done)
        done += 1
    calls = done - start_at
    return (calls / (time.perf_counter() - start),
            1000 * (time.process_time() - cpu) / max(calls, 1), done)


def views_caught_up(store: Store, app: VoiceSessions) -> None:
    supervisor = Supervisor(store).start()
    try:
        supervisor.wait_for(app.recorder.max_notification_id() or 0, 120)
    finally:
        supervisor.stop()


class Baselines:
    """The in-process read and command rates, in short rounds; `measure` before and after the
    HTTP runs, `figures` the median of every round and the slowest and fastest."""

    def __init__(self, app: VoiceSessions, reads: Reads, ids: list[UUID], spare: list[UUID],
                 seconds: float) -> None:
        cycle = (commands.ReportDisconnected(reason="bench"), commands.StartAttempt(attempt=1),
                 commands.ReportReconnected())
        self.read = lambda i: reads.status(ids[i % len(ids)])
        self.command = lambda i: app.handle(cycle[i % 3], spare[(i // 3) % len(spare)])
        self.seconds = seconds / BASELINE_ROUNDS
        self.reads: list[float] = []
        self.commands: list[float] = []
        self.read_cpu: list[float] = []
        self.command_cpu: list[float] = []
        self.next_command = 0  # the cycle goes on where the last round left it

    def measure(self) -> None:
        for _ in range(BASELINE_ROUNDS):
            rate, cpu, _ = in_process_rate(self.seconds, self.read)
            self.reads.append(rate)
            self.read_cpu.append(cpu)
            rate, cpu, self.next_command = in_process_rate(self.seconds, self.command,
                                                           self.next_command)
            self.commands.append(rate)
            self.command_cpu.append(cpu)

    def figures(self) -> dict[str, Any]:
        half = len(self.commands) // 2
        return {
            "direct_read_per_s": statistics.median(self.reads),
            "direct_read_spread": [round(min(self.reads)), round(max(self.reads))],
            "direct_command_per_s": statistics.median(self.commands),
            "direct_command_spread": [round(min(self.commands)), round(max(self.commands))],
            "direct_command_before_after": [round(statistics.median(self.commands[:half])),
                                            round(statistics.median(self.commands[half:]))],
            "direct_read_cpu_ms": round(statistics.median(self.read_cpu), 3),
            "direct_command_cpu_ms": round(statistics.median(self.command_cpu), 3),
        }


def measured(
    name: str, pid: int, url: str, plans: list[list[load.Request]], seconds: float,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """One load run; its figures under `name`, with the server's CPU ms per request."""
    before = cpu_seconds(pid)
    figures = load.run(url, plans, seconds, headers)
    cpu = 1000 * (cpu_seconds(pid) - before) / max(figures["requests"], 1)
    return {f"{name}_rps": figures["rps"], f"{name}_p50_ms": figures["p50_ms"],
            f"{name}_p99_ms": figures["p99_ms"], f"{name}_server_cpu_ms": cpu,
            f"{name}_failed": figures["non2xx"] + figures["socket_errors"]}


def http_rates(
    serve: Server, bare: BareServer, ids: list[UUID], seconds: float, connections: int
) -> dict[str, float]:
    pid, bare_pid = serve.process.pid, bare.process.pid
    per = len(ids) // connections
    mine = [ids[c * per:(c + 1) * per] for c in range(connections)]
    reads = [[load.Request("GET", f"/api/sessions/{i}") for i in m] for m in mine]
    bare_reads = [[load.Request("GET", f"/bare/{i}") for i in m] for m in mine]
    commands = [[load.Request("POST", f"/api/sessions/{i}/{name}", json.dumps(body))
                 for i in m for name, body in CYCLE] for m in mine]
    bare_commands = [[load.Request("POST", f"/bare/{i}/{name}", json.dumps(body))
                      for i in m for name, body in CYCLE] for m in mine]
    health = [[load.Request("GET", "/healthz")]] * connections
    return {
        **measured("bare_get", bare_pid, bare.url, bare_reads, seconds),
        **measured("healthz", pid, serve.url, health, seconds),
        **measured("read", pid, serve.url, reads, seconds, READER),
        **measured("bare_post", bare_pid, bare.url, bare_commands, seconds),
        **measured("command", pid, serve.url, commands, seconds, AGENT),
    }


def bench(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(backend) as store:
        views_db.upgrade(store)
        app = VoiceSessions(store.eventsourcing_env(), clock=SystemClock())
        ids = setup_sessions(app, args.sessions)
        views = views_db.engine(store)
        baselines = Baselines(app, Reads(app, views, SystemClock()), ids,
                              setup_sessions(app, args.sessions), args.seconds)
        # The in-process read reads the views: filled here, before any server runs (a server
        # running beside the baseline does follow-up work on the baseline's commands).
        views_caught_up(store, app)
        baselines.measure()
        server = Server(store, args.serve_workers)
        bare = BareServer(args.serve_workers)
        try:
            rates = http_rates(server, bare, ids, args.seconds, args.workers)
        finally:
            server.stop()
            bare.stop()
        baselines.measure()
        direct = baselines.figures()
        views.dispose()
        app.close()
    direct_read, direct_command = direct["direct_read_per_s"], direct["direct_command_per_s"]
    # A command over HTTP can at best cost the command in-process plus a bare endpoint.
    command_floor = 1 / (1 / direct_command + 1 / rates["bare_post_rps"])
    return {
        "backend": backend, "generator": load.generator(), "connections": args.workers,
        "serve_workers": args.serve_workers,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **{k: round(v, 2) if k.endswith("_ms") else round(v) for k, v in rates.items()},
        **{k: round(v) if isinstance(v, float) and not k.endswith("_ms") else v
           for k, v in direct.items()},
        "read_ratio_to_bare": round(rates["read_rps"] / rates["bare_get_rps"], 3),
        "read_ratio_to_direct": round(rates["read_rps"] / direct_read, 3),
        "command_floor_per_s": round(command_floor),
        "command_ratio_to_floor": round(rates["command_rps"] / command_floor, 3),
        "command_ratio_to_bare": round(rates["command_rps"] / rates["bare_post_rps"], 3),
        # The same ratios in CPU per request (less moved by other work on the machine than
        # rates): the bare endpoint's (plus the in-process command's) over serve's.
        "read_cpu_ratio_to_bare": round(
            rates["bare_get_server_cpu_ms"] / rates["read_server_cpu_ms"], 3),
        "command_cpu_ratio_to_floor": round(
            (direct["direct_command_cpu_ms"] + rates["bare_post_server_cpu_ms"])
            / rates["command_server_cpu_ms"], 3),
    }


def guarded(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """One backend's figures, or what stopped it (the other backend still runs)."""
    try:
        return bench(backend, args)
    except Exception as exc:
        return {"backend": backend, "error": f"{type(exc).__name__}: {exc}"[:500]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=16, help="connections in flight")
    parser.add_argument("--sessions", type=int, default=200, help="sessions read and commanded")
    parser.add_argument("--serve-workers", type=int, default=1,
                        help="uvicorn worker processes of serve and of the bare app")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [guarded(b, args) for b in backends() if args.only in (None, b)]
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": results}, indent=2))
        return
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
