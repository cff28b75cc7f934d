"""The command line as a user runs it: the entry point, its output and exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clara_es.domain import FAILURE_TEXT
from tests.support.cli_runner import clara_es


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("demo") / "x.db"
    result = clara_es("demo", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    return db, json.loads(result.stdout)


def test_demo_prints_the_checklist_timeline(tmp_path: Path) -> None:
    result = clara_es("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Connected" in out
    assert "Reconnecting... (attempt 1 of 5)" in out
    assert FAILURE_TEXT in " ".join(out.split())
    # The default demo keeps nothing: no database is left in the working directory.
    assert list(tmp_path.iterdir()) == []


def test_demo_json_shows_recovery_and_the_spec_schedule(
    demo_db: tuple[Path, dict[str, Any]],
) -> None:
    _, doc = demo_db
    recovered, failed = doc["sessions"]
    assert (recovered["final_state"], failed["final_state"]) == ("connected", "failed")
    events = [e for e in doc["timeline"] if e["session"] == failed["label"]]
    delays = [e["details"]["delay_ms"] for e in events if e["type"] == "ReconnectScheduled"]
    assert delays == [1000, 2000, 4000, 8000, 16000]
    assert [e["type"] for e in events].count("ReconnectAttemptFailed") == 5
    failed_event = next(e for e in events if e["type"] == "Failed")
    assert failed_event["details"]["attempts"] == 5
    assert failed_event["status_text"] == FAILURE_TEXT
    short_drop = [e for e in doc["timeline"] if e["session"] == recovered["label"]]
    statuses = [e["status_text"] for e in short_drop]
    assert statuses.index("Reconnecting...") < len(statuses) - 1
    assert statuses[-1] == "Connected"
    assert "Reconnected" in [e["type"] for e in short_drop]


def test_history_lists_the_same_events_as_the_demo(demo_db: tuple[Path, dict[str, Any]]) -> None:
    db, doc = demo_db
    failed = doc["sessions"][1]
    result = clara_es("history", failed["session_id"], "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    history = json.loads(result.stdout)
    demo_events = [
        (e["version"], e["type"], e["occurred_at"])
        for e in doc["timeline"] if e["session_id"] == failed["session_id"]
    ]
    assert [(h["version"], h["type"], h["occurred_at"]) for h in history] == demo_events
    assert [h["version"] for h in history] == list(range(1, len(history) + 1))


def test_history_reads_the_database_url_setting(demo_db: tuple[Path, dict[str, Any]]) -> None:
    db, doc = demo_db
    session_id = doc["sessions"][0]["session_id"]
    result = clara_es("history", session_id, env={"CLARA_ES_DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 0, result.stderr
    assert "Reconnected" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "not-a-uuid"], "is not a valid UUID"),
        (["history", "00000000-0000-4000-8000-000000000000"], "no session"),
        (["demo", "--max-attempts", "0"], "invalid policy: max_attempts"),
        (["demo", "--base-delay-ms", "-5"], "invalid policy: base_delay_ms"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    demo_db: tuple[Path, dict[str, Any]], args: list[str], message: str
) -> None:
    db, _ = demo_db
    before = db.stat().st_mtime_ns, db.stat().st_size
    result = clara_es(*args, "--db", str(db))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("clara-es: error:")
    assert message in result.stderr
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before


def test_missing_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    result = clara_es("history", "00000000-0000-4000-8000-000000000000", "--db", str(missing))
    assert result.returncode == 2
    assert "no database at" in result.stderr
    assert not missing.exists()


def test_unsupported_database_url_is_an_error(tmp_path: Path) -> None:
    result = clara_es(
        "history", "00000000-0000-4000-8000-000000000000",
        env={"CLARA_ES_DATABASE_URL": "mysql://root@localhost/x"}, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "unsupported database URL" in result.stderr
    assert list(tmp_path.iterdir()) == []
