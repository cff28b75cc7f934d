"""Poor quality reported over HTTP only, to `clara-es serve` with no agent attached: the
service's own timers decide QualityPoor, ask for a restart, and fail it when nobody answers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from clara_es.adapters.store import Store
from clara_es.http.auth import Role
from tests.support.http_service import bearer
from tests.support.serve_process import serve_process
from tests.support.waiting import wait_until


def test_http_quality_reports_lead_to_a_restart_that_no_agent_answers(
    store: Store, tmp_path: Path
) -> None:
    settings = {"poor_window_s": "1", "pipeline_restart_timeout_s": "2",
                "pipeline_restart_cap": "1", "poll_interval_s": "0.05"}
    with serve_process(store, tmp_path / "serve.log", **settings) as serve, \
            httpx.Client(base_url=serve.url, headers=bearer(Role.CLIENT), timeout=10) as http:
        sid = http.post("/api/sessions", json={"room": "room-1", "participant": "alice"}
                        ).json()["session_id"]
        for name in ("connect", "connected"):
            assert http.post(f"/api/sessions/{sid}/{name}", json={}).status_code == 200
        quality = f"/api/sessions/{sid}/quality"
        assert http.post(quality, json={"participant": "alice", "quality": "poor"}
                         ).status_code == 200
        time.sleep(1.5)  # the reporter's second reading, 1.5 s later: still poor
        assert http.post(quality, json={"participant": "alice", "quality": "poor"}
                         ).status_code == 200
        wait_until(lambda: "PipelineRestartRequested" in serve.types(sid), timeout=30,
                   what="the restart the service asks for")
        wait_until(lambda: "CleanupSkipped" in serve.types(sid), timeout=30,
                   what="the failed restart, the cap and the cleanup")
        history = serve.history(sid)
    types = [row["type"] for row in history]
    assert types[types.index("QualityChanged"):] == [
        "QualityChanged", "QualityPoor", "PipelineRestartRequested", "PipelineRestartFailed",
        "Failed", "CleanupRequested", "CleanupSkipped",
    ]
    at = {row["type"]: row for row in history}
    assert at["PipelineRestartFailed"]["details"]["error"] == "no agent answered"
    logged = serve.logged()
    for line in (f"event=quality_poor_detected session={sid}",
                 f"event=pipeline_restart_requested session={sid} restart=1",
                 f"event=pipeline_restart session={sid} restart=1 outcome=failed",
                 f"event=cleanup session={sid}"):
        assert line in logged, line
