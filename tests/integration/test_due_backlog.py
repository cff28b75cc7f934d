"""The process manager's backlog is visible: metrics, and /readyz past a threshold."""

from __future__ import annotations

import httpx

from clara_es.adapters.store import Store
from clara_es.domain import VirtualClock, commands
from clara_es.http import create_app
from tests.support.http_service import live_server, open_service
from tests.support.scenarios import connected
from tests.support.worker import worker_on


def test_an_overdue_deadline_shows_in_metrics_and_fails_readiness_until_fired(
    store: Store, clock: VirtualClock
) -> None:
    service = open_service(store, clock, follow_views=False, max_overdue_s=5.0)
    app = service.app
    try:
        with worker_on(app) as worker, live_server(create_app(service), service) as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            session_id = connected(app)
            # attempt 1 due in 1 s, deadline 11 s
            app.handle(commands.ReportDisconnected(reason="network"), session_id)
            worker.manager.catch_up()  # the rows are kept, but no worker fires them
            clock.advance(1 + 10 + 6)
            late = http.get("/readyz")
            assert late.status_code == 503
            assert late.json()["status"] == "due work behind"
            assert (late.json()["due_backlog"], late.json()["oldest_overdue_s"]) == (1, 6.0)
            metrics = http.get("/metrics").text
            assert "clara_es_due_backlog 1.0" in metrics
            assert "clara_es_due_oldest_overdue_seconds 6.0" in metrics
            worker.run_pending()  # the deadline fires: attempt 1 fails, attempt 2 is due
            ready = http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["due_backlog"] == 0
    finally:
        service.close()
