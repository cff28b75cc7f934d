"""`clara-es demo`: the spec's verification checklist on a virtual clock."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import click

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.cli.checklist import Check, checklist
from clara_es.cli.common import (
    console,
    db_option,
    json_option,
    open_app,
    policy_options,
    print_json,
    root_for,
    settings,
    short,
)
from clara_es.cli.errors import OPENED
from clara_es.demo import DemoRun, run_demo
from clara_es.domain import BackoffPolicy, SystemClock, VirtualClock
from clara_es.process import InMemoryAudioPipeline
from projections.catch_up import catch_up
from projections.db import upgrade


@click.command()
@db_option
@json_option
@click.option("--realtime", is_flag=True, help="Run on the wall clock (takes about a minute).")
@policy_options
def demo(db: Path | None, as_json: bool, realtime: bool, policy: BackoffPolicy) -> None:
    """Run the reconnection checklist: a 5 s drop that recovers, a 40 s outage that fails
    and is cleaned up by the server."""
    clock = SystemClock() if realtime else VirtualClock()
    # --db, else CLARA_ES_DATABASE_URL when it is set, else a store thrown away afterwards.
    keep = db is not None or "database_url" in settings().model_fields_set
    with tempfile.TemporaryDirectory(prefix="clara-es-demo-") as scratch:
        root = root_for(db if keep else Path(scratch) / "demo.db", undo_new=True)
        root.configure_logging(quiet=True)
        with open_app(root, create=True, clock=clock, policy=policy) as app:
            # The agent's first pipeline restart fails, to show the backoff and the retry.
            server = root.worker(app, pipeline=InMemoryAudioPipeline(failures=1))
            if not as_json:
                console.print("clara-es demo: the reconnection checklist, event by event")
                _stream(app, clock.now())
            try:
                run = run_demo(app, server)
            finally:
                server.close()
        if keep:
            _update_views(root.store)
    kept = OPENED.where.text if keep and OPENED.where is not None else None
    checks = checklist(run)
    if as_json:
        print_json({**_as_document(run, kept), "checklist": [c.__dict__ for c in checks]})
    else:
        _print_summary(run, checks, kept, db)


def _update_views(store: Store) -> None:
    """Leave the views up to date, so `clara-es status|sessions|stats` answer at once."""
    upgrade(store)
    catch_up(store)


def _as_document(run: DemoRun, kept: str | None) -> dict[str, object]:
    return {
        "database": kept,
        "sessions": [
            {
                "label": s.label,
                "description": s.description,
                "session_id": s.session_id,
                "final_state": s.final_state,
            }
            for s in run.sessions
        ],
        "timeline": [
            {
                "t_ms": round((e.occurred_at - run.started_at).total_seconds() * 1000),
                "session": s.label,
                "session_id": s.session_id,
                "version": e.version,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "actor": e.actor,
                "details": e.details,
                "status_text": e.state.status_text,
            }
            for s, e in run.timeline
        ],
    }


def _stream(app: VoiceSessions, started_at: datetime) -> None:
    """Print each event as it is stored (on the wall clock with --realtime, as it happens)."""
    shown: dict[UUID, int] = {}

    def stream(recordings: list[Any]) -> None:
        for session_id in dict.fromkeys(r.domain_event.originator_id for r in recordings):
            label = app.session(session_id).room.rsplit("-", 1)[-1].upper()
            for e in session_history(app, session_id):
                if e.version <= shown.get(session_id, 0):
                    continue
                shown[session_id] = e.version
                t = (e.occurred_at - started_at).total_seconds()
                console.print(f"{t:8.3f}s  {label}  v{e.version:<3} {e.type:<24} "
                              f"{e.state.status_text:<34} {short(e.details)}".rstrip(),
                              soft_wrap=True, markup=False)
        console.file.flush()  # a pipe sees each line as it happens, too

    app.on_saved(stream)


def _print_summary(run: DemoRun, checks: list[Check], kept: str | None, db: Path | None) -> None:
    for s in run.sessions:
        console.print(f"session {s.label} ({s.description}): {s.session_id} -> {s.final_state}",
                      soft_wrap=True)
    console.print("the spec's verification checklist:")
    for c in checks:
        console.print(f"  {'PASS' if c.passed else 'FAIL'}  {c.step}. {c.checked}: {c.figure}",
                      soft_wrap=True, markup=False)
    if kept is not None:
        again = f" --db {db}" if db is not None else ""
        console.print(f"stored in {kept}: try `clara-es history <session id>{again}`",
                      soft_wrap=True)
