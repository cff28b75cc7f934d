"""A job that keeps failing is tried again later and later, with one traceback in the log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from clara_es.domain import VirtualClock
from clara_es.domain.commands import EndSession
from clara_es.process import CleanupResult, SessionRef
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.worker import settings, worker_on


class BrokenRoomService:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def cleanup(self, session: SessionRef, delete_room: bool) -> CleanupResult:
        self.calls.append(self.clock.now().timestamp())
        raise ConnectionResetError("RoomService went away")


def test_a_failing_effect_backs_off_and_logs_one_traceback(
    make_app: AppFactory, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clara_es.process.worker")
    app = make_app()
    broken = BrokenRoomService(clock)
    with worker_on(app, cleaner=broken, config=settings(lease_s=30.0)) as worker:
        sid = connected(app)
        app.handle(EndSession(reason="user"), sid)
        worker.run_until(clock.now() + timedelta(seconds=120))
    waits = [round(b - a) for a, b in zip(broken.calls, broken.calls[1:], strict=False)]
    assert waits[:5] == [2, 4, 8, 16, 30]  # doubling, then the lease at most
    failed = [r for r in caplog.records if r.getMessage().startswith("event=job_failed")]
    assert len(failed) == len(broken.calls)
    assert [bool(r.exc_info) for r in failed] == [True] + [False] * (len(failed) - 1)
    assert "error='ConnectionResetError: RoomService went away'" in failed[-1].getMessage()
    assert app.status(sid).connection_state == "ended"  # nothing recorded for a failed try
