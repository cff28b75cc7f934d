"""Write throughput with 1, 2 and 4 writer processes on one PostgreSQL, against pgbench.

    python -m bench.writers [--seconds 10] [--quick] [--json]

Each writer is a process of its own with one VoiceSessions application (pool of 2), running
the six-command script of bench.commands (start, connect, connected, disconnected,
attempt_started, reconnected) on sessions of its own, for a fixed window after a common start.
The baseline, on the same PostgreSQL in the same run (before and after the writers), is
pgbench with 4 clients running a one-row INSERT transaction into a table shaped like the
events table (a uuid, a version, a topic, a 300-byte state). While the writers run, the
bench samples pg_stat_activity every 10 ms: the share of samples in which a writer waits
for a lock is the cost of eventsourcing's table lock (`LOCK TABLE ... IN EXCLUSIVE MODE`
per append, which keeps the notification log gap-free). pgbench with 1 client, one insert
transaction at a time, is what appends serialised by that lock could reach at best.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.common import POSTGRES_URL, fresh_store, postgres_arguments
from clara_es.adapters.store import Store

APP_NAME = "clara-bench-writer"
COMMANDS_PER_SESSION = 6


def writer(env: dict[str, str], go: Any, seconds: float, out: Any, index: int) -> None:
    os.environ["PGAPPNAME"] = APP_NAME
    from clara_es.application import VoiceSessions
    from clara_es.domain import commands

    app = VoiceSessions(env)
    app.handle(commands.StartSession(room="warm-up", participant=f"w{index}"))  # connected first
    out.put("ready")
    done, n = 0, 0
    go.wait()
    end = time.time() + seconds
    while time.time() < end:
        sid = app.handle(commands.StartSession(
            room=f"room-{index}-{n}", participant=f"user-{index}-{n}")).session_id
        for command in (commands.Connect(), commands.MarkConnected(),
                        commands.ReportDisconnected(reason="network"),
                        commands.StartAttempt(attempt=1), commands.ReportReconnected()):
            app.handle(command, sid)
        done += COMMANDS_PER_SESSION
        n += 1
    app.close()
    out.put(done)


def writers(store: Store, processes: int, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    env = {**store.eventsourcing_env(), "POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "2"}
    procs = [ctx.Process(target=writer, args=(env, go, seconds, out, i))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        assert out.get(timeout=120) == "ready"
    go.set()
    waits = sample_waits(seconds)
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for proc in procs:
        proc.join()
    return {"writers": processes, "commands_s": total / seconds, **waits}


def sample_waits(seconds: float) -> dict[str, float]:
    """The share of pg_stat_activity samples in which writers were waiting on a lock, busy,
    or idle (in the client: Python, between statements)."""
    seen: Counter[str] = Counter()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for state, wait_type in conn.execute(
                "SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name=%s",
                (APP_NAME,),
            ):
                if wait_type == "Lock":
                    seen["lock"] += 1
                elif state == "active":
                    seen["busy"] += 1
                else:
                    seen["client"] += 1
            time.sleep(0.01)
    total = sum(seen.values()) or 1
    return {f"{k}_share": seen[k] / total for k in ("lock", "busy", "client")}


def pgbench(store: Store, seconds: float, clients: int = 4) -> float:
    schema = store.eventsourcing_env().get("POSTGRES_SCHEMA", "public")
    table = f'"{schema}".pgbench_events'
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (notification_id bigserial primary "
                     "key, originator_id uuid, originator_version int, topic text, state bytea)")
    state = "\\x" + "ab" * 300
    script = (f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
              f"VALUES (gen_random_uuid(), 1, 'clara_es.domain.events:Connected', "
              f"'{state}'::bytea);\n")
    url = make_url(POSTGRES_URL)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(int(seconds)),
             "-f", f.name, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
             "-U", url.username or "postgres", url.database or "postgres"],
            capture_output=True, text=True, check=True,
        )
    finally:
        os.unlink(f.name)
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


def main(argv: list[str] | None = None) -> None:
    args = postgres_arguments(__doc__, argv, "3-second windows", seconds=10.0)
    seconds = 3.0 if args.quick else args.seconds
    rows: list[dict[str, Any]] = []
    with fresh_store("postgres") as store:
        from clara_es.application import VoiceSessions

        VoiceSessions(store.eventsourcing_env()).close()  # the tables, before any writer
        before = pgbench(store, seconds)
        results = [writers(store, n, seconds) for n in (1, 2, 4)]
        after = pgbench(store, seconds)
        serial = pgbench(store, seconds, clients=1)
    baseline = (before + after) / 2
    for result in results:
        r = {**result, "pgbench_tps": baseline, "ratio": result["commands_s"] / baseline}
        rows.append(r)
        if not args.json:
            print(f"{r['writers']} writer process(es): {r['commands_s']:7,.0f} commands/s; "
                  f"pgbench (4 clients) {baseline:7,.0f} tx/s; ratio {r['ratio']:.3f}; "
                  f"writer samples: lock wait {r['lock_share']:.0%}, in PostgreSQL "
                  f"{r['busy_share']:.0%}, in Python {r['client_share']:.0%}", flush=True)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "pgbench_before": before,
                          "pgbench_after": after, "pgbench_1_client": serial,
                          "load_avg": os.getloadavg()[0], "rows": rows}, indent=2))
    else:
        print(f"pgbench (4 clients) before {before:,.0f} tx/s, after {after:,.0f} tx/s; "
              f"1 client (one transaction at a time, as under a table lock) {serial:,.0f} tx/s; "
              f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
