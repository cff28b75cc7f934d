"""A worker process for the SIGKILL tests: runs until a pause point, says so, and waits.

    python -m tests.support.process_worker STORE_URL MODE READY_FILE START_ISO [LIVEKIT_URL]

MODE timers:  record the timers of every session fact, then pause.
MODE cleanup: fire the due cleanup timer (CleanupRequested), run the cleanup against
              LiveKit, then pause before the outcome is recorded.
The test waits for READY_FILE and kills the process with SIGKILL.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from pathlib import Path

from clara_es.adapters.rooms import LiveKitRoomCleaner
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock
from clara_es.process import CleanupResult, RoomCleaner, SessionRef, SkippedRoomCleaner

from .twirp_server import API_KEY, API_SECRET
from .worker import settings, worker_on


def pause(ready: Path) -> None:
    ready.write_text("paused\n")
    threading.Event().wait()  # until SIGKILL


class PausingCleaner:
    def __init__(self, inner: RoomCleaner, ready: Path) -> None:
        self.inner = inner
        self.ready = ready

    def cleanup(self, session: SessionRef, delete_room: bool) -> CleanupResult:
        self.inner.cleanup(session, delete_room)
        pause(self.ready)
        raise AssertionError("unreachable")


def main(url: str, mode: str, ready_file: str, start: str, livekit_url: str = "") -> None:
    store = Store.from_url(url)
    ready = Path(ready_file)
    clock = VirtualClock(datetime.fromisoformat(start))
    app = VoiceSessions(store.eventsourcing_env(), clock=clock)
    inner: RoomCleaner = (
        LiveKitRoomCleaner(livekit_url, API_KEY, API_SECRET, clock) if livekit_url
        else SkippedRoomCleaner()
    )
    with worker_on(app, cleaner=PausingCleaner(inner, ready),
                   config=settings(cleanup_grace_s=0.0)) as worker:
        if mode == "timers":
            worker.manager.catch_up()
            pause(ready)
        worker.run_pending()
    raise SystemExit(f"mode {mode}: nothing to pause at")


if __name__ == "__main__":
    main(*sys.argv[1:])
