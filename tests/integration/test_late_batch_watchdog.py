"""A batch reported after the outage is not raced by the attempt watchdog: its deadlines count
from when the service learned of an attempt, not from when the attempt happened."""

from __future__ import annotations

from datetime import timedelta

from clara_es.application import session_history
from clara_es.application.batch import apply_batch
from clara_es.domain import FAILURE_TEXT, VirtualClock, commands
from clara_es.process import SkippedRoomCleaner, start_worker
from tests.support.apps import AppFactory
from tests.support.scenarios import connected
from tests.support.worker import settings


def test_the_watchdog_catching_up_between_a_late_batch_s_signals_fails_nothing(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    worker = start_worker(app, SkippedRoomCleaner(), settings())
    sid = connected(app)

    t, dropped = clock.now(), clock.now()
    outage = [commands.ReportDisconnected(reason="wifi off", occurred_at=t, idempotency_key="d")]
    for n, delay in enumerate([1, 2, 4, 8, 16], start=1):
        t += timedelta(seconds=delay)
        outage.append(commands.StartAttempt(attempt=n, occurred_at=t, idempotency_key=f"s{n}"))
        t += timedelta(seconds=0.5)
        outage.append(commands.FailAttempt(attempt=n, error="unreachable", occurred_at=t,
                                  idempotency_key=f"f{n}"))
    clock.advance(120)  # the client comes back two minutes later and flushes
    for command in outage:  # the watchdog catches up between every two signals
        apply_batch(app, sid, clock.now(), [command])
        worker.run_pending()
    worker.run_until(clock.now() + timedelta(seconds=5))

    history = session_history(app, sid)
    assert history[-1].state.status_text == FAILURE_TEXT
    assert not [e for e in history if e.cause.get("name") == "attempt_timed_out"]
    started = [e.occurred_at for e in history if e.type == "ReconnectAttempted"]
    assert [(s - dropped).total_seconds() for s in started] == [1, 3.5, 8, 16.5, 33]
    worker.close()
