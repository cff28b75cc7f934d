"""An idle `clara-es run` holding many pending timers: how much of a core it burns doing nothing.

    python -m bench.idle [--sessions 10000] [--seconds 30] [--quick] [--json]

N sessions are connected and then drop (decided in memory with the wall clock's time, inserted
as stored; the process manager and the views caught up before `run` starts: not timed); their
clients never try again and the policy's first attempt is 22 hours away, so `run` holds N
timers, none of them due. `clara-es run` (the process manager, its timers and effects, and the
views, as an operator runs it; polling every CLARA_ES_POLL_INTERVAL_S, 0.2 s by default) is
started as a process of its own; once it has settled, its CPU time (user + system, from /proc)
is read over `--seconds`, and that of the PostgreSQL server processes serving its connections
(named by PGAPPNAME). Baseline, same run and server: the same `run` on an empty store.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.common import POSTGRES_URL, fresh_store, postgres_arguments
from bench.timers import copy_log
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import BackoffPolicy, VirtualClock, commands
from clara_es.process.due import ProcessManager, backlog
from clara_es.process.engine import due_engine
from projections.catch_up import catch_up
from projections.db import upgrade

FAR = BackoffPolicy(base_delay_ms=22 * 3600 * 1000, factor=1.0)
SETTLE_S = 3.0
QUICK_ARGS = ["--quick"]


def reconnecting(app: VoiceSessions, sessions: int, copy: int = 2000) -> None:
    """`sessions` sessions waiting for a reconnect attempt 22 hours from now."""
    memory = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                           clock=VirtualClock(datetime.now(UTC)), policy=FAR)
    for i in range(sessions):
        sid = memory.handle(commands.StartSession(room=f"room-{i}", participant=f"user-{i}"))
        memory.handle(commands.Connect(), sid.session_id)
        memory.handle(commands.MarkConnected(), sid.session_id)
        memory.handle(commands.ReportDisconnected(reason="network"), sid.session_id)
    copy_log(memory, app, copy)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends(name: str) -> list[int]:
    """The PostgreSQL server processes serving connections named `name` (same machine)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                            (name,)).fetchall()
    return [int(pid) for (pid,) in rows]


def server_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_s(pid)  # (unless its connection closed meanwhile)
    return total


def idle_run(store: Store, seconds: float) -> dict[str, Any]:
    """Start `clara-es run` on the store, let it settle, measure its CPU over `seconds`, and
    that of the PostgreSQL server processes serving it (its connections are named)."""
    name = f"bench-idle-{os.getpid()}"
    env = {**os.environ, "CLARA_ES_DATABASE_URL": store.url, "CLARA_ES_LOG_LEVEL": "warning",
           "PGAPPNAME": name}
    proc = subprocess.Popen([sys.executable, "-m", "clara_es", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "clara-es run: ... running"
        time.sleep(SETTLE_S)
        server = backends(name)
        before, started = cpu_s(proc.pid), time.monotonic()
        server_before = server_cpu_s(server)
        time.sleep(seconds)
        used, wall = cpu_s(proc.pid) - before, time.monotonic() - started
        served = server_cpu_s(server) - server_before
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"cpu_s": round(used, 3), "wall_s": round(wall, 1),
            "core_fraction": round(used / wall, 4), "connections": len(server),
            "server_cpu_s": round(served, 3), "server_core_fraction": round(served / wall, 4)}


def prepared(store: Store, sessions: int) -> int:
    """The store with `sessions` reconnecting sessions, rows and views caught up; the jobs
    pending."""
    app = VoiceSessions(store.eventsourcing_env(), policy=FAR)
    upgrade(store)
    if sessions:
        reconnecting(app, sessions)
    engine = due_engine(store)
    ProcessManager(app, engine, Settings.model_construct()).catch_up()
    catch_up(store)
    now = datetime.now(UTC)
    due = backlog(engine, now)
    assert due.jobs == 0, f"{due.jobs} timers are due already"
    with engine.connect() as conn:
        pending = int(conn.exec_driver_sql("SELECT count(*) FROM due_work").scalar() or 0)
    engine.dispose()
    app.close()
    return pending


def main(argv: list[str] | None = None) -> None:
    args = postgres_arguments(__doc__, argv, "2,000 sessions, 10 s", sessions=10_000,
                              seconds=30.0)
    n, seconds = (2_000, 10.0) if args.quick else (args.sessions, args.seconds)
    rows = []
    for label, count in (("empty store (baseline)", 0), (f"{n:,} pending timers", n)):
        with fresh_store("postgres") as store:
            pending = prepared(store, count)
            rows.append({"store": label, "sessions": count, "pending_jobs": pending,
                         **idle_run(store, seconds), "load_avg": os.getloadavg()[0]})
    ratio = rows[1]["core_fraction"] / max(rows[0]["core_fraction"], 1e-9)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows,
                          "timers_vs_empty": round(ratio, 2)}, indent=2))
        return
    for row in rows:
        print(f"idle run, {row['store']}: {row['pending_jobs']:,} jobs pending, "
              f"{row['cpu_s']:.2f} CPU s in {row['wall_s']:.0f} s = "
              f"{100 * row['core_fraction']:.1f} % of a core; its {row['connections']} "
              f"PostgreSQL server processes {100 * row['server_core_fraction']:.1f} % "
              f"(load {row['load_avg']:.1f})")
    print(f"with the timers / empty: {ratio:.2f}x")


if __name__ == "__main__":
    main()
