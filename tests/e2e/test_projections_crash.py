"""`clara-es projections run` killed with SIGKILL mid-way through 10,000 events, then
started again, ends with exactly the views of a clean rebuild: nothing applied twice,
nothing missed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock
from projections.catch_up import rebuild
from projections.db import upgrade
from projections.views import VIEWS
from tests.support import ROOT
from tests.support.view_streams import build_streams, positions, snapshot
from tests.support.waiting import wait_until

EVENTS = 10_000


def start_runner(store: Store) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CLARA_ES_DATABASE_URL": store.url}
    return subprocess.Popen(
        [sys.executable, "-m", "clara_es", "projections", "run", "--poll", "0.05"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def test_sigkill_mid_stream_then_restart_equals_a_clean_rebuild(
    app: VoiceSessions, clock: VirtualClock, store: Store
) -> None:
    while (app.recorder.max_notification_id() or 0) < EVENTS:
        build_streams(app, clock, 100)
    head = app.recorder.max_notification_id()
    upgrade(store)

    runner = start_runner(store)
    try:
        wait_until(lambda: max(positions(store).values()) >= head // 4, what="a quarter applied")
        runner.send_signal(signal.SIGKILL)
        assert runner.wait(timeout=30) == -signal.SIGKILL
    finally:
        runner.kill()
    at_kill = positions(store)
    assert min(at_kill.values()) < head, f"the runner finished before the kill: {at_kill}"

    restarted = start_runner(store)
    try:
        wait_until(
            lambda: positions(store) == dict.fromkeys(VIEWS, head), what="all views at the head"
        )
        restarted.send_signal(signal.SIGINT)
        restarted.wait(timeout=30)
    finally:
        restarted.kill()
    after_restart = snapshot(store)

    rebuild(store)
    assert snapshot(store) == after_restart
    assert len(after_restart["history"]) == head
