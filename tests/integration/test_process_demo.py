"""`clara-es demo --json` shows the server's part: pipeline restarts and the cleanup."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from clara_es.cli import cli


def test_demo_shows_restarts_for_the_drop_and_cleanup_for_the_outage() -> None:
    env = {k: None for k in os.environ if k.startswith("CLARA_ES_LIVEKIT")}
    result = CliRunner().invoke(cli, ["demo", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    by_session: dict[str, list[dict]] = {"A": [], "B": []}
    for entry in doc["timeline"]:
        by_session[entry["session"]].append(entry)
    a = [e["type"] for e in by_session["A"]]
    assert a.index("QualityPoor") < a.index("PipelineRestartRequested")
    assert a.count("PipelineRestartFailed") == 1 and a.count("PipelineRestarted") == 1
    assert a[-2:] == ["Reconnected", "QualityChanged"]
    assert "CleanupRequested" not in a
    b = [e["type"] for e in by_session["B"]]
    assert b.count("ReconnectAttemptFailed") == 5
    assert b[-3:] == ["Failed", "CleanupRequested", "CleanupSkipped"]
    skipped = by_session["B"][-1]
    assert skipped["details"]["reason"] == "cleanup skipped: no LiveKit configured"
    assert skipped["t_ms"] - by_session["B"][-3]["t_ms"] == 30_000  # the grace time
