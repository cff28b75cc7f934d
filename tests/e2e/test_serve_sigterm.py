"""SIGTERM while `serve` has a backlog of due work: it stops within a few seconds, and the
jobs it had not finished are claimed and done by the next process on the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import httpx

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import commands
from tests.support.http_service import API_KEY, API_SECRET
from tests.support.scenarios import connected
from tests.support.served import answers, free_port
from tests.support.twirp_server import fake_room_service
from tests.support.waiting import wait_until

SESSIONS = 16
OUTCOMES = ("SessionCleanedUp", "CleanupFailed", "CleanupSkipped")
# How long `serve` may take to stop on SIGTERM with jobs running (a bound, not a measure).
STOP_BOUND_S = 6


def test_sigterm_with_a_backlog_stops_soon_and_the_next_process_finishes(
    store: Store, tmp_path: Path
) -> None:
    ids = ended_sessions(store, SESSIONS)
    with fake_room_service() as rooms:
        # Every RoomService call takes 8 s: a backlog of cleanups, each longer than the stop.
        rooms.delay_s = 8.0
        env = {**os.environ, "CLARA_ES_DATABASE_URL": store.url,
               "CLARA_ES_LIVEKIT_URL": rooms.url, "CLARA_ES_LIVEKIT_API_KEY": API_KEY,
               "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET, "CLARA_ES_LEASE_S": "3",
               "CLARA_ES_LOG_LEVEL": "warning"}
        first, _ = serve(env, tmp_path / "first.log")
        wait_until(lambda: len(rooms.calls) >= 4, timeout=60, what="cleanups to begin")
        stopping = time.monotonic()
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(timeout=STOP_BOUND_S)
        finally:
            if first.poll() is None:
                first.kill()
        stopped_after = time.monotonic() - stopping
        done_by_first = cleaned(store, ids)
        assert len(done_by_first) < SESSIONS, "the backlog was done before SIGTERM"

        rooms.delay_s = 0.0
        second, url = serve(env, tmp_path / "second.log")
        try:
            wait_until(lambda: outcomes_served(url) >= SESSIONS, timeout=120,
                       what="the next process to finish the backlog")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=STOP_BOUND_S * 3)
    outcomes = cleaned(store, ids)
    assert all(n == 1 for n in outcomes.values()), outcomes  # each cleanup outcome once
    print(f"stopped {stopped_after:.2f} s after SIGTERM; {len(done_by_first)} of {SESSIONS} "
          "cleanups done by the first process, the rest by the next")


def ended_sessions(store: Store, n: int) -> list[UUID]:
    app = VoiceSessions(store.eventsourcing_env())
    try:
        ids = []
        for i in range(n):
            session_id = connected(app, f"room-{i}")
            app.handle(commands.EndSession(), session_id)
            ids.append(session_id)
        return ids
    finally:
        app.close()


def cleaned(store: Store, ids: list[UUID]) -> Counter[str]:
    """Cleanup outcomes recorded per session (from the streams)."""
    app = VoiceSessions(store.eventsourcing_env())
    try:
        counts: Counter[str] = Counter()
        for session_id in ids:
            for event in app.events_after(session_id):
                if type(event).__name__ in OUTCOMES:
                    counts[str(session_id)] += 1
        return counts
    finally:
        app.close()


def outcomes_served(url: str) -> float:
    """Cleanup outcomes the views have counted (polled over HTTP: the store is left alone)."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("clara_es_effects_total{") and
               any(f'outcome="{o}"' in line for o in OUTCOMES))


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`serve` as a process of its own (this test signals it and times its stop)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clara_es", "serve", "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(url), timeout=60, what="serve to answer")
    return proc, url
