"""How late the watchdog fires while clients send 100 commands/s (PostgreSQL).

    python -m bench.lateness [--rate 100] [--seconds 30] [--workers 1] [--quick] [--json]

Clients (8 threads in this process, VoiceSessions directly, no HTTP) send `--rate` commands
per second, paced, for `--seconds`. Each client session starts, connects and drops; half of
them try once and reconnect, then end (their cleanup is due at once); the other half never
try again, so the watchdog fails each of their five attempts at its deadline, then Failed's
cleanup timer asks for cleanup after the grace time. Short timings (settings): attempts
every 0.2, 0.4, ... 3.2 s, a 1 s attempt timeout, a 1 s grace. `--workers` processes run
the process manager (`clara-es run`) on wall time.

Lateness of every timer is read back from the log (bench/timers.py). Baseline, in this
process during the same run: a bare thread sleeping until a tick every 20 ms, and how late
it wakes (the loaded machine's own floor for any timer).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from bench.common import fresh_store, postgres_arguments
from bench.timers import POOL, BareSleeper, Workers, pct, timeline
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import BackoffPolicy, commands
from clara_es.process.engine import due_engine
from clara_es.process.tables import due_work
from projections.db import upgrade

POLICY = BackoffPolicy(base_delay_ms=200)
TIMEOUT_S, GRACE_S = 1.0, 1.0
THREADS = 8


def scripts(app: VoiceSessions, thread: int) -> Iterator[Callable[[], Any]]:
    """One client's commands, session after session."""
    n = 0
    while True:
        room, user = f"room-{thread}-{n}", f"user-{thread}-{n}"
        box: dict[str, Any] = {}  # the session's id, once started
        start = commands.StartSession(room=room, participant=user)
        yield lambda b=box, c=start: b.setdefault("sid", app.handle(c).session_id)
        steps = [commands.Connect(), commands.MarkConnected(),
                 commands.ReportDisconnected(reason="network")]
        if n % 2 == 0:  # this client comes back; the other half never tries again
            steps += [commands.StartAttempt(attempt=1), commands.ReportReconnected(),
                      commands.EndSession(reason="user")]
        for step in steps:
            yield lambda b=box, c=step: app.handle(c, b["sid"])
        n += 1


def paced(app: VoiceSessions, rate: float, seconds: float) -> int:
    """Send `rate` commands/s for `seconds` from THREADS clients; the commands sent."""
    lock = threading.Lock()
    slot = [0]
    start = time.monotonic() + 0.2
    end = start + seconds
    sent = [0] * THREADS

    def client(k: int) -> None:
        for command in scripts(app, k):
            with lock:
                at = start + slot[0] / rate
                slot[0] += 1
            if at >= end:
                return
            time.sleep(max(0.0, at - time.monotonic()))
            command()
            sent[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sent)


def drained(store: Store, wait_s: float) -> float:
    """Wait until no due work is left (every abandoned session Failed and cleaned up, every
    ended one cleaned up); the seconds it took."""
    engine = due_engine(store)
    started = time.monotonic()
    try:
        while time.monotonic() - started < wait_s:
            with engine.connect() as conn:
                if conn.execute(sa.select(sa.func.count()).select_from(due_work)).scalar() == 0:
                    return time.monotonic() - started
            time.sleep(0.2)
    finally:
        engine.dispose()
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    args = postgres_arguments(__doc__, argv, "10 s of load", rate=100.0, seconds=30.0,
                              workers=1)
    seconds = 10.0 if args.quick else args.seconds
    overrides = {"attempt_timeout_s": TIMEOUT_S, "cleanup_grace_s": GRACE_S,
                 "pool_size": 2, "pool_max_overflow": 2}
    with fresh_store("postgres") as store:
        app = VoiceSessions({**store.eventsourcing_env(), **POOL}, policy=POLICY)
        upgrade(store)
        after = app.recorder.max_notification_id() or 0
        with Workers(store, args.workers, overrides), BareSleeper() as bare:
            began = time.monotonic()
            sent = paced(app, args.rate, seconds)
            achieved = sent / (time.monotonic() - began)
            bare_late = list(bare.late)
            sessions = sum(1 for _ in app.started_sessions())
            drain_s = drained(store, 120.0)
        t = timeline(app, after, TIMEOUT_S, GRACE_S)
        app.close()
    row = {
        "rate": args.rate, "achieved_commands_s": achieved, "seconds": seconds,
        "workers": args.workers, "sessions": sessions, "watchdog_firings": len(t.watchdog_late),
        "watchdog_p50_s": pct(t.watchdog_late, 0.5), "watchdog_p99_s": pct(t.watchdog_late, 0.99),
        "watchdog_max_s": max(t.watchdog_late, default=float("nan")),
        "cleanup_p50_s": pct(t.cleanup_late, 0.5), "cleanup_p99_s": pct(t.cleanup_late, 0.99),
        "bare_p50_s": pct(bare_late, 0.5), "bare_p99_s": pct(bare_late, 0.99),
        "drained_after_s": drain_s, "load_avg": os.getloadavg()[0],
    }
    row["p99_ratio"] = row["watchdog_p99_s"] / row["bare_p99_s"]
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": [row]}, indent=2))
        return
    print(f"{sent} commands in {seconds:g} s ({achieved:.0f}/s of {args.rate:g}), "
          f"{args.workers} worker process(es), {sessions} sessions: watchdog fired "
          f"{len(t.watchdog_late)} times, late p50 {row['watchdog_p50_s'] * 1000:.0f} ms, "
          f"p99 {row['watchdog_p99_s'] * 1000:.0f} ms, max {row['watchdog_max_s'] * 1000:.0f} "
          f"ms; cleanup timers p50 {row['cleanup_p50_s'] * 1000:.0f} ms, p99 "
          f"{row['cleanup_p99_s'] * 1000:.0f} ms; bare sleeper p50 "
          f"{row['bare_p50_s'] * 1000:.1f} ms, p99 {row['bare_p99_s'] * 1000:.1f} ms "
          f"(watchdog p99 / bare p99 = {row['p99_ratio']:.0f}); drained "
          f"{drain_s:.1f} s after the load; load average {row['load_avg']:.1f}")


if __name__ == "__main__":
    main()
