"""How fast the process manager follows a backlog of session facts into its due-work rows.

    python -m bench.catch_up [--facts 50000] [--quick] [--json] [--only sqlite|postgres]

A backlog of about `--facts` facts is appended first (not timed), by sessions that each go
through every rule the decision table has: start (two sessions per room), connect, poor
quality confirmed, a pipeline restart requested and failed (the rule that reads the session
as it was), quality good again, an outage whose five attempts fail, Failed, cleanup
requested (the rule that asks whether the room is shared) and skipped: 27 facts a session.
The backlog is decided in memory and copied into the store as stored, in large inserts.

Measured: `ProcessManager.catch_up()` from position 0 to the head, on a fresh due-work
position. Baseline, same process, same store, same facts: a bare read of the notification
log in the catch-up's batch size, decoding every fact (the least a catch-up can cost).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench.common import backends, fresh_store
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.config import Settings
from clara_es.domain import VirtualClock, commands
from clara_es.domain.schedule import follow
from clara_es.process.due import ProcessManager
from clara_es.process.engine import due_engine
from projections.db import upgrade

FACTS_PER_SESSION = 27
COPY = 2000  # stored events per insert when the backlog is copied into the store


def backlog(app: VoiceSessions, clock: VirtualClock, sessions: int) -> None:
    for i in range(sessions):
        user = f"user-{i}"
        sid = app.handle(commands.StartSession(room=f"room-{i // 2}", participant=user)).session_id
        app.handle(commands.Connect(), sid)
        app.handle(commands.MarkConnected(), sid)
        app.handle(commands.ChangeQuality(participant=user, quality="poor"), sid)
        app.handle(commands.ConfirmPoorQuality(participant=user), sid)
        app.handle(commands.RequestPipelineRestart(cap=3, command_id=f"restart-{i}"), sid)
        request = app.session(sid).restart_request
        assert request is not None
        app.handle(commands.FinishPipelineRestart(request_id=request, error="no audio"), sid)
        app.handle(commands.ChangeQuality(participant=user, quality="good"), sid)
        state = app.handle(commands.ReportDisconnected(reason="network"), sid)
        follow(lambda c, s=sid: app.handle_with_events(c, s), state, clock.advance_to,
               lambda _attempt: "network unreachable")
        app.handle(commands.RequestCleanup(reason="bench", command_id=f"cleanup-{i}"), sid)
        cleanup = app.session(sid).cleanup_request
        assert cleanup is not None
        app.handle(commands.FinishCleanup(request_id=cleanup, outcome="skipped", detail="bench"),
                   sid)
        clock.advance(timedelta(seconds=1))


def copy_backlog(sessions: int, into: VoiceSessions) -> None:
    """Decide the backlog in an in-memory application, then insert its stored events."""
    clock = VirtualClock()
    memory = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    backlog(memory, clock, sessions)
    position = 0
    while True:
        notifications = memory.recorder.select_notifications(
            start=position, limit=COPY, inclusive_of_start=False)
        if not notifications:
            break
        into.recorder.insert_events([
            StoredEvent(originator_id=n.originator_id, originator_version=n.originator_version,
                        topic=n.topic, state=n.state) for n in notifications])
        position = notifications[-1].id
    memory.close()


def bare_read(app: VoiceSessions, batch: int) -> int:
    position, read = 0, 0
    while True:
        notifications = app.recorder.select_notifications(
            start=position, limit=batch, inclusive_of_start=False)
        if not notifications:
            return read
        for notification in notifications:
            app.mapper.to_domain_event(notification)
        read += len(notifications)
        position = notifications[-1].id


def measure(store: Store, sessions: int) -> dict[str, Any]:
    app = VoiceSessions(store.eventsourcing_env(), clock=VirtualClock())
    upgrade(store)
    copy_backlog(sessions, app)
    facts = app.recorder.max_notification_id() or 0
    engine = due_engine(store)
    manager = ProcessManager(app, engine, Settings.model_construct())
    batch = getattr(manager, "catch_up_batch", manager.batch)
    t1 = time.perf_counter()
    read = bare_read(app, batch)
    bare_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    applied = manager.catch_up()
    catch_up_s = time.perf_counter() - t2
    assert read == facts and applied == facts and manager.position() == facts, (
        read, applied, facts)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM due_work").scalar()
    engine.dispose()
    app.close()
    return {"store": store.backend, "facts": facts,
            "bare_read_facts_s": facts / bare_s, "catch_up_facts_s": facts / catch_up_s,
            "catch_up_s": catch_up_s, "ratio": bare_s / catch_up_s, "due_rows_left": rows,
            "batch": batch}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--facts", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="a 5,000-fact backlog")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    facts = 5_000 if args.quick else args.facts
    sessions = max(1, facts // FACTS_PER_SESSION)
    rows = []
    for backend in [args.only] if args.only else backends():
        with fresh_store(backend) as store:
            row = measure(store, sessions)
        rows.append(row)
        if not args.json:
            print(f"{row['store']:8} {row['facts']:>7,} facts: catch-up "
                  f"{row['catch_up_facts_s']:>8,.0f} facts/s ({row['catch_up_s']:.1f} s), bare "
                  f"read {row['bare_read_facts_s']:>8,.0f} facts/s, ratio {row['ratio']:.3f} "
                  f"(batch {row['batch']})",
                  flush=True)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
