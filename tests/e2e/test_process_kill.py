"""Crashes: a worker killed with SIGKILL at a pause point, then started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from clara_es.adapters.rooms import LiveKitRoomCleaner
from clara_es.adapters.store import Store
from clara_es.application import session_history
from clara_es.domain import VirtualClock, commands
from tests.support import ROOT
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.twirp_server import API_KEY, API_SECRET, fake_room_service
from tests.support.worker import failed_session, settings, worker_on


def run_until_paused(store: Store, mode: str, tmp_path: Path, clock: VirtualClock,
                     livekit_url: str = "") -> None:
    """Start a worker process, wait until it reaches its pause point, SIGKILL it."""
    ready = tmp_path / f"{mode}.ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.process_worker", store.url, mode, str(ready),
         clock.now().isoformat(), livekit_url],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, f"worker exited with {proc.returncode} before pausing"
            assert time.monotonic() < deadline, "worker never reached its pause point"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL



def test_killed_between_cleanup_request_and_outcome_cleans_up_once(
    store: Store, make_app: AppFactory, clock: VirtualClock, tmp_path: Path
) -> None:
    app = make_app()
    session_id = failed_session(app, clock)
    with fake_room_service() as livekit:
        livekit.rooms = {"room-1": {"alice"}}
        run_until_paused(store, "cleanup", tmp_path, clock, livekit.url)
        assert session_history(app, session_id)[-1].type == "CleanupRequested"
        assert livekit.rooms == {}  # the effect ran, its outcome was never recorded
        cleaner = LiveKitRoomCleaner(livekit.url, API_KEY, API_SECRET, clock)
        for _ in range(2):  # started again, and once more for good measure
            with worker_on(app, cleaner=cleaner,
                           config=settings(cleanup_grace_s=0.0)) as worker:
                worker.run_until(clock.now() + timedelta(minutes=5))
        calls = [c.method for c in livekit.calls]
    kinds = [e.type for e in session_history(app, session_id)]
    assert kinds.count("CleanupRequested") == 1
    assert kinds.count("SessionCleanedUp") == 1
    assert kinds[-1] == "SessionCleanedUp"
    assert calls == ["RemoveParticipant", "DeleteRoom"] * 2  # repeated, safely: 404 the 2nd time


def test_killed_with_100_pending_timers_fires_all_and_no_superseded_one(
    store: Store, make_app: AppFactory, clock: VirtualClock, tmp_path: Path
) -> None:
    app = make_app()
    t0 = clock.now()
    sessions: list[UUID] = []
    for i in range(100):
        clock.advance_to(t0 + timedelta(seconds=i * 0.2))
        session_id = connected(app, f"room-{i}", f"user-{i}")
        # attempt 1 due +1 s, deadline +11 s
        app.handle(commands.ReportDisconnected(reason="network"), session_id)
        sessions.append(session_id)
    run_until_paused(store, "timers", tmp_path, clock)

    # While the worker is dead, a third of the clients try attempt 1 and fail it themselves:
    # their recorded attempt-1 deadlines are superseded by attempt 2's.
    superseded = set(sessions[::3])
    for session_id in superseded:
        app.handle(commands.FailAttempt(attempt=1, error="network unreachable"), session_id)
    restarted_at = t0 + timedelta(seconds=25)  # deadlines run to t0 + 30.8 s
    clock.advance_to(restarted_at)
    with worker_on(app) as worker:
        worker.run_pending()
        worker.run_until(t0 + timedelta(minutes=10))

    for i, session_id in enumerate(sessions):
        history = session_history(app, session_id)
        assert "SignalIgnored" not in [e.type for e in history]
        timeouts = [e for e in history if e.details.get("error") == "timeout"]
        first = timeouts[0]
        if session_id in superseded:
            assert first.details["attempt"] == 2
        else:
            deadline = t0 + timedelta(seconds=i * 0.2 + 11)
            assert first.details["attempt"] == 1
            assert first.occurred_at == max(deadline, restarted_at)  # late ones at once
        assert history[-1].type == "CleanupSkipped"
        assert app.status(session_id).connection_state == "failed"
