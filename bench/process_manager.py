"""How fast the process manager keeps up with the session streams.

    python -m bench.process_manager [--sessions N] [--postgres URL] [--json]

Baseline, in the same process on the same store: appending the facts of N sessions that
each go through a 40-second outage (start, connect, 5 scheduled and failed attempts,
Failed) with VoiceSessions commands. Measured: the process manager catching up with all
of those facts (each decision recorded with its tracking position), then firing the N
cleanup timers and running the N cleanups (skipped: no LiveKit). Reported as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import VirtualClock, commands
from clara_es.domain.schedule import follow
from clara_es.process import InMemoryAudioPipeline, SkippedRoomCleaner, start_worker


def measure(store: Store, sessions: int) -> dict[str, float]:
    clock = VirtualClock()
    app = VoiceSessions(store.eventsourcing_env(), clock=clock)
    t0 = time.perf_counter()
    for i in range(sessions):
        start = commands.StartSession(room=f"room-{i}", participant=f"user-{i}")
        session_id = app.handle(start).session_id
        app.handle(commands.Connect(), session_id)
        app.handle(commands.MarkConnected(), session_id)
        state = app.handle(commands.ReportDisconnected(reason="network"), session_id)
        follow(lambda c, s=session_id: app.handle_with_events(c, s), state, clock.advance_to,
               lambda _attempt: "network unreachable")
    append_s = time.perf_counter() - t0
    facts = app.recorder.max_notification_id() or 0

    settings = Settings.model_construct(**Settings.model_construct().model_dump())
    worker = start_worker(app, SkippedRoomCleaner(), settings, pipeline=InMemoryAudioPipeline())
    t1 = time.perf_counter()
    worker.manager.catch_up()
    catch_up_s = time.perf_counter() - t1
    clock.advance(timedelta(seconds=settings.cleanup_grace_s))
    t2 = time.perf_counter()
    worker.run_pending()
    cleanup_s = time.perf_counter() - t2
    worker.close()
    app.close()
    return {"facts": facts, "append_s": append_s, "catch_up_s": catch_up_s,
            "cleanup_s": cleanup_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--postgres", help="postgresql://... (a fresh schema is best)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        stores = {"sqlite": Store.sqlite(Path(scratch) / "bench.db")}
        if args.postgres:
            stores["postgres"] = Store.from_url(args.postgres)
        for name, store in stores.items():
            r = measure(store, args.sessions)
            rows.append({"store": name, "sessions": args.sessions, **r,
                         "catch_up_ratio": round(r["catch_up_s"] / r["append_s"], 2),
                         "cleanup_ratio": round(r["cleanup_s"] / r["append_s"], 2)})
            if args.json:
                continue
            print(
                f"{name}: {args.sessions} sessions, {r['facts']} facts; "
                f"append {r['append_s']:.2f} s ({r['facts'] / r['append_s']:.0f} facts/s); "
                f"catch-up {r['catch_up_s']:.2f} s ({r['facts'] / r['catch_up_s']:.0f} facts/s, "
                f"{r['catch_up_s'] / r['append_s']:.2f}x the append time); "
                f"{args.sessions} cleanups {r['cleanup_s']:.2f} s "
                f"({r['cleanup_s'] / r['append_s']:.2f}x)"
            )
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
