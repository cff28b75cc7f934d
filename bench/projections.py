"""Benchmark of the views: rebuild rate (events/s) and live lag (append -> view row visible),
on SQLite and PostgreSQL, with 1,000 concurrent sessions.

Baselines are measured in the same process on the same events: for the rebuild, a bare
read of the notification log (select_notifications in the same batch size, decoding each
event with eventsourcing's stock mapper and JSON transcoder), alternating with the rebuilds,
best of `--rounds` each; for the lag, a bare follower that only polls the log for the new position.

Run it as a module from the repository root (as a script, this file's name would hide the
`projections` package it measures):

    python -m bench.projections [--sessions 1000] [--seconds 10] [--rate 200]
        [--poll 0.05] [--rounds 3] [--only sqlite|postgres] [--no-rebuild] [--no-lag]
        [--json] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import psycopg
from eventsourcing.persistence import JSONTranscoder, Mapper

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import Actor, BackoffPolicy, Signal, SystemClock, VoiceSession, commands
from projections.catch_up import rebuild
from projections.db import upgrade
from projections.runner import BATCH
from projections.supervisor import Supervisor


@contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="clara-es-bench-") as tmp:
        yield Store.sqlite(Path(tmp) / "bench.db")


@contextmanager
def postgres_store(url: str) -> Iterator[Store]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Store.from_url(f"{url}?schema={schema}")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def fill(app: VoiceSessions, sessions: int) -> list[VoiceSession]:
    """Each session connects and goes through three outages, two recovered, one failed."""
    clock = app.clock

    def sig(name: str) -> Signal:
        return Signal(name=name, actor=Actor.CLIENT, at=clock.now())

    aggregates = [
        VoiceSession.start(f"room-{i % 50}", f"user-{i}", BackoffPolicy(), sig("start"))
        for i in range(sessions)
    ]
    steps: list[Callable[[VoiceSession], None]] = [
        lambda s: s.connect(sig("connect")), lambda s: s.mark_connected(sig("connected")),
    ]
    for _ in range(2):
        steps += [
            lambda s: s.disconnect("network", sig("disconnected")),
            lambda s: s.start_attempt(1, sig("attempt")),
            lambda s: s.fail_attempt(1, "down", sig("failed")),
            lambda s: s.start_attempt(2, sig("attempt")),
            lambda s: s.reconnect(sig("reconnected")),
        ]
    steps.append(lambda s: s.disconnect("network", sig("disconnected")))
    for attempt in range(1, 6):
        steps.append(lambda s, a=attempt: s.fail_attempt(a, "down", sig("failed")))
    for step in [lambda s: None, *steps]:
        for s in aggregates:
            step(s)
        for start in range(0, sessions, 200):
            app.save(*aggregates[start : start + 200])
    return aggregates


def stock_mapper(app: VoiceSessions) -> Mapper[UUID]:
    """eventsourcing's own mapper and JSON transcoder, with the transcodings the application
    registers: the baseline decodes as eventsourcing does, whatever clara-es's mapper does."""
    transcoder = JSONTranscoder()
    app.register_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


def bare_read(app: VoiceSessions) -> float:
    """Seconds to read and decode the whole log in the views' batch size."""
    to_domain_event = stock_mapper(app).to_domain_event
    started = time.perf_counter()
    position = 0
    while batch := app.recorder.select_notifications(
        start=position, limit=BATCH, inclusive_of_start=False
    ):
        for notification in batch:
            to_domain_event(notification)
        position = batch[-1].id
    return time.perf_counter() - started


def bench_rebuild(store: Store, sessions: int, rounds: int = 3) -> dict[str, float]:
    """Best of `rounds` alternating bare reads and rebuilds (the machine is shared: the best
    time is the one least disturbed by others)."""
    app = VoiceSessions(store.eventsourcing_env())
    fill(app, sessions)
    upgrade(store)
    events = app.recorder.max_notification_id()
    baselines, rebuilds = [], []
    for _ in range(rounds):
        baselines.append(bare_read(app))
        started = time.perf_counter()
        rebuild(store)
        rebuilds.append(time.perf_counter() - started)
    app.close()
    baseline, elapsed = min(baselines), min(rebuilds)
    return {
        "events": events,
        "rounds": rounds,
        "baseline_events_per_s": events / baseline,
        "rebuild_events_per_s": events / elapsed,
        "rebuild_view_events_per_s": 4 * events / elapsed,
        "ratio": baseline / elapsed,
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[98]


def bench_lag(
    store: Store, sessions: int, seconds: float, rate: float, poll: float
) -> dict[str, float]:
    """A paced writer runs commands round-robin over `sessions` live sessions."""
    app = VoiceSessions(store.eventsourcing_env(), clock=SystemClock())
    upgrade(store)
    ids = [
        app.handle(commands.StartSession(room=f"room-{i % 50}", participant=f"user-{i}")).session_id
        for i in range(sessions)
    ]
    for session_id in ids:
        app.handle(commands.Connect(), session_id)
        app.handle(commands.MarkConnected(), session_id)
    appended: dict[int, float] = {}
    seen_view: dict[int, float] = {}
    seen_log: dict[int, float] = {}
    stop = threading.Event()
    reader = VoiceSessions(store.eventsourcing_env())

    def watch(position: Callable[[], int], seen: dict[int, float]) -> None:
        last = position()
        while not stop.is_set():
            now_position = position()
            if now_position > last:
                now = time.perf_counter()
                for n in range(last + 1, now_position + 1):
                    seen[n] = now
                last = now_position
            time.sleep(0.001)

    with Supervisor(store, poll_interval=poll) as supervisor:
        supervisor.wait_for(app.recorder.max_notification_id(), timeout=300)
        runners = list(supervisor.runners.values())
        watchers = [
            threading.Thread(
                target=watch, args=(lambda: min(r.position() for r in runners), seen_view)
            ),
            threading.Thread(
                target=watch, args=(lambda: reader.recorder.max_notification_id() or 0, seen_log)
            ),
        ]
        for w in watchers:
            w.start()
        cycle = (
            commands.ReportDisconnected(reason="network"),
            commands.StartAttempt(attempt=1),
            commands.ReportReconnected(),
        )
        interval = 1 / rate
        next_at = time.perf_counter()
        deadline = next_at + seconds
        i = 0
        while time.perf_counter() < deadline:
            session_id = ids[i % sessions]
            app.handle(cycle[(i // sessions) % 3], session_id)
            appended[app.recorder.max_notification_id()] = time.perf_counter()
            i += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        supervisor.wait_for(app.recorder.max_notification_id(), timeout=300)
        time.sleep(0.05)
        stop.set()
        for w in watchers:
            w.join()
    app.close()
    reader.close()
    view_lag = [(seen_view[n] - t) * 1000 for n, t in appended.items() if n in seen_view]
    log_lag = [(seen_log[n] - t) * 1000 for n, t in appended.items() if n in seen_log]
    v50, v99 = percentiles(view_lag)
    b50, b99 = percentiles(log_lag)
    return {"commands": i, "lag_p50_ms": v50, "lag_p99_ms": v99,
            "baseline_p50_ms": b50, "baseline_p99_ms": b99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="commands per second")
    parser.add_argument("--poll", type=float, default=0.05, help="SQLite views' poll interval")
    parser.add_argument("--rounds", type=int, default=3, help="rebuild rounds (best is kept)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="one backend only")
    parser.add_argument("--no-rebuild", action="store_true", help="measure the live lag only")
    parser.add_argument("--no-lag", action="store_true", help="measure the rebuild only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    backends = {"sqlite": sqlite_store, "postgres": lambda: postgres_store(args.postgres)}
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for name, make in backends.items():
        if args.only and name != args.only:
            continue
        figures[name] = {}
        if not args.no_rebuild:
            with make() as store:
                r = figures[name]["rebuild"] = bench_rebuild(store, args.sessions, args.rounds)
            if not args.json:
                print(
                    f"{name:8} rebuild: {r['events']} events, "
                    f"{r['rebuild_events_per_s']:,.0f} events/s "
                    f"(all 4 views; {r['rebuild_view_events_per_s']:,.0f} view-events/s); "
                    f"bare log read {r['baseline_events_per_s']:,.0f} events/s; "
                    f"ratio {r['ratio']:.3f} (best of {r['rounds']})"
                )
        if args.no_lag:
            continue
        with make() as store:
            lag = bench_lag(store, args.sessions, args.seconds, args.rate, args.poll)
        lag["ratio_p50"] = lag["lag_p50_ms"] / max(lag["baseline_p50_ms"], 1e-3)
        lag["ratio_p99"] = lag["lag_p99_ms"] / max(lag["baseline_p99_ms"], 1e-3)
        figures[name]["live_lag"] = lag
        if not args.json:
            print(
                f"{name:8} live lag at {args.sessions} sessions, {args.rate:.0f} commands/s, "
                f"poll {args.poll * 1000:.0f} ms "
                f"({lag['commands']} commands): p50 {lag['lag_p50_ms']:.1f} ms, "
                f"p99 {lag['lag_p99_ms']:.1f} ms; bare log follower p50 "
                f"{lag['baseline_p50_ms']:.1f} ms, p99 {lag['baseline_p99_ms']:.1f} ms; "
                f"ratio p50 {lag['ratio_p50']:.1f}x, p99 {lag['ratio_p99']:.1f}x"
            )
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
