"""The mass outage: N connected sessions drop at once and no client ever comes back.

    python -m bench.outage [--sessions 10000] [--writers 4] [--workers 2] [--quick] [--json]

N sessions are connected first (decided in memory, inserted as stored, the process manager
caught up: not timed). Then `--writers` processes report `disconnected` for their share of
the sessions as fast as they can (VoiceSessions directly, no HTTP), while `--workers`
processes run the process manager (`clara-es run`) on wall time, with cleanup going to a
loopback stand-in for LiveKit's RoomService (tests/support/twirp_server.py, real Twirp over
HTTP). No client attempts, so every session is failed by the watchdog alone: five attempts
(0.2, 0.4, ... 3.2 s apart, a 1 s attempt timeout: the timings are shortened by settings so
that the run is spent processing the herd, not waiting), Failed, then cleanup 1 s later.

Reported: the time until every session has its ReconnectScheduled; the watchdog's lateness
p50/p99 while the herd is processed (read back from the log); each session's time from its
drop to Failed against the ideal (every timer on time, the policy's own schedule) and the
slowest one's distance from it; the time until every session is Failed and cleaned up, and
the RemoveParticipant calls the stand-in received.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from typing import Any

import psycopg
from psycopg import sql

from bench.common import POSTGRES_URL, fresh_store, postgres_arguments
from bench.timers import (
    POOL,
    Workers,
    connected_backlog,
    ideal_failed_s,
    pct,
    settings_for,
    timeline,
)
from clara_es.application import VoiceSessions
from clara_es.domain import BackoffPolicy, commands
from clara_es.domain.events import STORED_TOPIC_PREFIX
from clara_es.process.due import ProcessManager
from clara_es.process.engine import due_engine
from projections.db import upgrade
from tests.support.twirp_server import API_KEY, API_SECRET, fake_room_service

POLICY = BackoffPolicy(base_delay_ms=200)
TIMEOUT_S, GRACE_S = 1.0, 1.0


def _writer(env: dict[str, str], ids: list[str], ready: Any, go: Any, done: Any) -> None:
    from uuid import UUID

    app = VoiceSessions(env)
    app.recorder.max_notification_id()  # connected before the start
    ready.put(os.getpid())
    go.wait()
    for sid in ids:
        app.handle(commands.ReportDisconnected(reason="network"), UUID(sid))
    app.close()
    done.put(len(ids))


def count(conn: Any, app: VoiceSessions, after: int, event: str) -> int:
    recorder: Any = app.recorder
    query = sql.SQL("SELECT count(DISTINCT originator_id) FROM {}.{} WHERE notification_id > %s "
                    "AND topic = %s").format(sql.Identifier(recorder.datastore.schema),
                                                sql.Identifier(recorder.events_table_name))
    return int(conn.execute(query, (after, STORED_TOPIC_PREFIX + event)).fetchone()[0])


def wait_for(conn: Any, app: VoiceSessions, after: int, event: str, n: int, limit: float,
             since: float) -> float:
    while time.monotonic() - since < limit:
        if count(conn, app, after, event) >= n:
            return time.monotonic() - since
        time.sleep(0.5)  # a count scans the herd's facts: not too often
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    args = postgres_arguments(__doc__, argv, "1,000 sessions", sessions=10_000, writers=4,
                              workers=2)
    n = 1_000 if args.quick else args.sessions
    with fresh_store("postgres") as store, fake_room_service() as livekit, \
            psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        env = {**store.eventsourcing_env(), **POOL}
        app = VoiceSessions(env, policy=POLICY)
        upgrade(store)
        sessions = connected_backlog(app, n, POLICY)
        for _sid, room, user in sessions:
            livekit.rooms[room] = {user}
        overrides = {"attempt_timeout_s": TIMEOUT_S, "cleanup_grace_s": GRACE_S,
                     "livekit_url": livekit.url, "livekit_api_key": API_KEY,
                     "livekit_api_secret": API_SECRET, "pool_size": 2, "pool_max_overflow": 2}
        engine = due_engine(store)
        ProcessManager(app, engine, settings_for(overrides)).catch_up()  # rooms known
        engine.dispose()
        head = app.recorder.max_notification_id() or 0
        ctx = mp.get_context("spawn")
        ready, go, done = ctx.Queue(), ctx.Event(), ctx.Queue()
        with Workers(store, args.workers, overrides):
            writers = [ctx.Process(target=_writer, args=(
                env, [str(s[0]) for s in sessions[k::args.writers]], ready, go, done))
                for k in range(args.writers)]
            for proc in writers:
                proc.start()
            for _ in writers:
                ready.get(timeout=120)
            began = time.monotonic()
            go.set()
            scheduled_s = wait_for(conn, app, head, "ReconnectScheduled", n, 1800, began)
            failed_s = wait_for(conn, app, head, "Failed", n, 3600, began)
            cleaned_s = wait_for(conn, app, head, "SessionCleanedUp", n, 3600, began)
            for proc in writers:
                proc.join()
        t = timeline(app, head, TIMEOUT_S, GRACE_S)
        app.close()
        removed = [c for c in livekit.calls if c.method == "RemoveParticipant"]
    ideal = {sid: ideal_failed_s(POLICY, sid, TIMEOUT_S) for sid, _r, _u in sessions}
    behind = [t.failed_after[sid] - ideal[sid] for sid in t.failed_after]
    ratio = [t.failed_after[sid] / ideal[sid] for sid in t.failed_after]
    row = {
        "sessions": n, "writers": args.writers, "workers": args.workers,
        "all_scheduled_s": scheduled_s, "all_failed_s": failed_s, "all_cleaned_s": cleaned_s,
        "ideal_failed_s": max(ideal.values()), "ideal_cleaned_s": max(ideal.values()) + GRACE_S,
        "watchdog_firings": len(t.watchdog_late), "watchdog_p50_s": pct(t.watchdog_late, 0.5),
        "watchdog_p99_s": pct(t.watchdog_late, 0.99),
        "failed_behind_ideal_p50_s": pct(behind, 0.5),
        "failed_behind_ideal_max_s": max(behind, default=float("nan")),
        # the goal: every session Failed within 1.2 x its ideal time after its drop
        "failed_vs_ideal_p50": pct(ratio, 0.5), "failed_vs_ideal_max": max(ratio, default=0),
        "remove_participant_calls": len(removed),
        "rooms_called_twice": len(removed) - len({c.room for c in removed}),
        "load_avg": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": [row]}, indent=2))
        return
    print(f"{n} sessions dropped by {args.writers} writer processes, {args.workers} worker "
          f"processes: every ReconnectScheduled after {scheduled_s:.1f} s "
          f"({n / scheduled_s:,.0f} sessions/s); watchdog fired {len(t.watchdog_late)} times, "
          f"late p50 {row['watchdog_p50_s']:.2f} s, p99 {row['watchdog_p99_s']:.2f} s; "
          f"every session Failed after {failed_s:.1f} s (ideal {row['ideal_failed_s']:.1f} s; "
          f"behind ideal p50 {row['failed_behind_ideal_p50_s']:.1f} s, slowest "
          f"{row['failed_behind_ideal_max_s']:.1f} s, {row['failed_vs_ideal_max']:.2f}x its "
          f"ideal) and cleaned up after {cleaned_s:.1f} s "
          f"(ideal {row['ideal_cleaned_s']:.1f} s); RemoveParticipant {len(removed)} calls, "
          f"{row['rooms_called_twice']} repeated; load average {row['load_avg']:.1f}")


if __name__ == "__main__":
    main()
