"""Where `serve`'s CPU per command goes, by thread: one `serve` under a stream of commands
(wrk, 16 connections, the commands of bench.http), the user and system CPU of each of its
threads over the run (Linux /proc) per command, grouped by the thread's Python name (read
with `py-spy dump` when py-spy is installed; a profiling tool, not a dependency: without it
the threads are listed by id).

    python -m bench.serve_threads --only postgres --seconds 6
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench import load
from bench.common import backends, fresh_store
from bench.http import AGENT, CYCLE, Server, setup_sessions
from clara_es.application import VoiceSessions
from clara_es.domain import SystemClock
from projections import db as views_db

TICKS = 100  # clock ticks per second of /proc's utime and stime
QUICK_ARGS = ["--seconds", "2"]  # for `python -m bench all`


def thread_ticks(pid: int) -> dict[int, tuple[int, int]]:
    ticks = {}
    for path in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            fields = Path(path).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(path.split("/")[4])] = (int(fields[11]), int(fields[12]))
    return ticks


def thread_names(pid: int) -> dict[int, str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {}
    dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True)
    names = {}
    for line in dump.stdout.splitlines():
        if line.startswith("Thread ") and '"' in line:
            names[int(line.split()[1], 0)] = line.split('"')[1]
    return names


def measure(backend: str, seconds: float, connections: int) -> dict[str, Any]:
    with fresh_store(backend) as store:
        views_db.upgrade(store)
        app = VoiceSessions(store.eventsourcing_env(), clock=SystemClock())
        ids = setup_sessions(app, 200)
        server = Server(store)
        pid = server.process.pid
        try:
            per = len(ids) // connections
            plans = [[load.Request("POST", f"/api/sessions/{i}/{name}", json.dumps(body))
                      for i in ids[c * per:(c + 1) * per] for name, body in CYCLE]
                     for c in range(connections)]
            load.run(server.url, plans, 2, AGENT)  # warm-up: connections, prepared statements
            before = thread_ticks(pid)
            figures = load.run(server.url, plans, seconds, AGENT)
            after = thread_ticks(pid)
            names = thread_names(pid)
        finally:
            server.stop()
        app.close()
    per_command = 1000 / TICKS / max(figures["requests"], 1)
    total: Counter[str] = Counter()
    system: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for tid, (user, sys_) in after.items():
        user0, sys0 = before.get(tid, (0, 0))
        name = names.get(tid, f"thread {tid}")
        total[name] += (user - user0 + sys_ - sys0) * per_command
        system[name] += (sys_ - sys0) * per_command
        count[name] += 1
    return {
        "backend": backend, "commands_per_s": round(figures["rps"]),
        "cpu_ms_per_command": round(sum(total.values()), 3),
        "system_ms_per_command": round(sum(system.values()), 3),
        "threads": [{"name": name, "threads": count[name], "cpu_ms": round(ms, 3),
                     "system_ms": round(system[name], 3)}
                    for name, ms in total.most_common() if ms > 0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=16, help="connections in flight")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--json", action="store_true", help="one JSON document (the default "
                        "prints it indented)")
    args = parser.parse_args(argv)
    rows = [measure(backend, args.seconds, args.workers)
            for backend in ([args.only] if args.only else backends())]
    print(json.dumps({"rows": rows}, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
