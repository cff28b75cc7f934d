"""`clara-es run` end to end: a real process that cleans up a failed session, keeps the views
up to date, then stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import SystemClock, commands
from projections import queries
from projections.db import engine
from tests.support import ROOT
from tests.support.scenarios import connected


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_run_cleans_up_a_failed_session_and_stops_on_sigterm(store: Store) -> None:
    app = VoiceSessions(store.eventsourcing_env(), clock=SystemClock())
    session_id = connected(app)
    state = app.handle(commands.ReportDisconnected(), session_id)
    while state.connection_state == "reconnecting":
        failure = commands.FailAttempt(attempt=state.attempt, error="network unreachable")
        state = app.handle(failure, session_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_ES_")}
    env |= {"CLARA_ES_DATABASE_URL": store.url, "CLARA_ES_CLEANUP_GRACE_S": "0",
            "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clara_es", "run"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def cleaned() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            return session_history(app, session_id)[-1].type == "CleanupSkipped"

        wait_for(cleaned, "CleanupSkipped")
        views = engine(store)

        def view_caught_up() -> bool:
            try:
                status = queries.status(views, session_id)
            except Exception:  # the views' tables are created by `run` itself
                return False
            return status is not None and status.version == app.status(session_id).version

        try:
            wait_for(view_caught_up, "the UI-state view to show the last event")
            view_status = queries.status(views, session_id)
        finally:
            views.dispose()
        assert view_status is not None
        assert view_status.connection_state == "failed"
        assert view_status.start_enabled
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        app.close()
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert "event=livekit_not_configured" in err
    assert f"event=cleanup session={session_id} room=room-1 participant=alice outcome=skipped" \
        in err
