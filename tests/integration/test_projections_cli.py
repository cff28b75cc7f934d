"""The view commands end to end: `clara-es demo --db`, then status, stats, sessions, history,
projections rebuild, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import FAILURE_TEXT, commands
from tests.support.cli_runner import Ran, clara_es


def clara(*args: str, url: str | None = None) -> Ran:
    return clara_es(*args, env=None if url is None else {"CLARA_ES_DATABASE_URL": url})


def clara_json(*args: str, url: str | None = None) -> Any:
    done = clara(*args, "--json", url=url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    db = str(tmp_path_factory.mktemp("demo") / "x.db")
    run = clara_json("demo", "--db", db)
    return db, {s["label"]: s["session_id"] for s in run["sessions"]}


def test_status_of_the_failed_demo_session_answers_from_the_view(
    demo_db: tuple[str, dict[str, str]],
) -> None:
    db, ids = demo_db
    status = clara_json("status", ids["B"], "--db", db)
    assert set(status) >= {
        "connection_state", "status_text", "start_enabled", "attempt", "max_attempts",
        "next_retry_at", "updated_at",
    }
    assert status["connection_state"] == "failed"
    assert status["status_text"] == FAILURE_TEXT
    assert status["start_enabled"] is True
    assert (status["attempt"], status["max_attempts"]) == (5, 5)
    assert status["next_retry_at"] is None
    recovered = clara_json("status", ids["A"], "--db", db)
    assert recovered["status_text"] == "Connected"
    assert recovered["start_enabled"] is False


def test_stats_count_one_recovered_and_one_failed_session(
    demo_db: tuple[str, dict[str, str]],
) -> None:
    db, _ = demo_db
    stats = clara_json("stats", "--db", db)
    assert stats["recovered_sessions"] == 1
    assert stats["failed_sessions"] == 1
    assert stats["sessions_by_state"] == {"connected": 1, "failed": 1}
    assert stats["recovery_rate"] == 0.5
    # The process manager recorded B's cleanup outcome (skipped: no LiveKit configured), so
    # nothing is orphaned; orphans themselves are covered in tests/test_projections.py.
    assert stats["orphans"]["sessions"] == []
    table = clara("stats", "--db", db)
    assert "recovery rate" in table.stdout and "50.0%" in table.stdout


def test_sessions_and_history_filters(demo_db: tuple[str, dict[str, str]]) -> None:
    db, ids = demo_db
    failed = clara_json("sessions", "--state", "failed", "--db", db)
    assert [s["session_id"] for s in failed] == [ids["B"]]
    assert failed[0]["counts"]["reconnect_attempts"] == 5
    in_room_a = clara_json("history", "--room", "demo-room-a", "--type", "Reconnected",
                           "--db", db)
    assert [(e["session_id"], e["type"]) for e in in_room_a] == [(ids["A"], "Reconnected")]
    window = clara_json("history", "--participant", "demo-user-b", "--since",
                        "2026-01-01T00:00:40Z", "--until", "2026-01-01T00:01:00Z", "--db", db)
    assert window and {e["session_id"] for e in window} == {ids["B"]}
    assert window[-1]["type"] == "Failed"
    assert all(e["occurred_at"] >= "2026-01-01T00:00:40" for e in window)


def test_rebuild_gives_the_same_answers(demo_db: tuple[str, dict[str, str]]) -> None:
    db, _ = demo_db
    before = clara_json("sessions", "--db", db)
    rebuilt = clara_json("projections", "rebuild", "--db", db)
    assert set(rebuilt["positions"]) == {"ui_state", "attempt_counts", "history", "stats"}
    assert clara_json("sessions", "--db", db) == before


def test_bad_input_is_one_line_and_exit_2(
    demo_db: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    db, _ = demo_db
    unknown = clara("status", str(uuid4()), "--db", db)
    assert (unknown.returncode, unknown.stderr.count("\n")) == (2, 1)
    assert "no session" in unknown.stderr
    missing = clara("stats", "--db", str(tmp_path / "nothing.db"))
    assert missing.returncode == 2 and "no database" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()
    bad_view = clara("projections", "rebuild", "nope", "--db", db)
    assert bad_view.returncode == 2 and "unknown view nope" in bad_view.stderr
    bad_time = clara("history", "--since", "yesterday", "--db", db)
    assert bad_time.returncode == 2 and "ISO 8601" in bad_time.stderr


def test_commands_on_a_store_without_views_say_to_upgrade(
    store: Store, app: VoiceSessions
) -> None:
    session_id = app.handle(commands.StartSession(room="room", participant="alice")).session_id
    done = clara("status", str(session_id), url=store.url)
    assert done.returncode == 2
    assert "clara-es db upgrade" in done.stderr
    assert clara("db", "upgrade", url=store.url).returncode == 0
    assert clara_json("projections", "rebuild", url=store.url)["positions"]["ui_state"] == 1
    assert clara_json("status", str(session_id), url=store.url)["connection_state"] == "idle"
