"""Causality across writers, and `clara-es replay` on a demo's SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import Actor, VirtualClock, commands, ui_state
from clara_es.replay.races import RaceKind
from clara_es.replay.timeline import replay_steps
from tests.support.cli_runner import clara_es
from tests.support.scenarios import connected, lose_one_race, racy_sessions


def test_a_command_retried_after_a_conflict_shows_the_read_it_lost(
    make_app: Any,
) -> None:
    client, agent = make_app(), make_app()
    session_id = connected(client)
    client_saw_it = commands.ReportDisconnected(reason="client saw it")
    lose_one_race(agent, lambda: client.handle(client_saw_it, session_id))
    agent.handle(commands.ReportDisconnected(reason="agent saw it", actor=Actor.AGENT), session_id)
    assert agent.conflicts_retried == 1
    ignored = session_history(client, session_id)[-1]
    assert ignored.type == "SignalIgnored"
    assert ignored.cause["lost_reads"] == [3]  # read v3, the client appended v4 and v5 first
    assert ignored.cause["read_version"] == 5


def test_race_steps_are_marked_with_what_happened_and_how(
    make_app: Any, clock: VirtualClock
) -> None:
    app = make_app()
    racy = racy_sessions(app, make_app(), clock)
    marked = {
        (s.entry.type, r.kind)
        for s in replay_steps(app, racy.duplicate_outage) for r in s.races
    }
    assert marked == {
        ("SignalIgnored", RaceKind.DUPLICATE_OUTAGE),
        ("SignalIgnored", RaceKind.CONCURRENT_WRITERS),
    }
    assert not any(s.races for s in replay_steps(app, racy.quiet))


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UUID]:
    db = tmp_path_factory.mktemp("replay") / "demo.db"
    result = clara_es("demo", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    failed = json.loads(result.stdout)["sessions"][1]
    assert failed["final_state"] == "failed"
    return db, UUID(failed["session_id"])


def test_replay_json_lists_every_event_with_state_ui_text_and_cause(
    demo_store: tuple[Path, UUID],
) -> None:
    db, session_id = demo_store
    result = clara_es("replay", str(session_id), "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    app = VoiceSessions(Store.sqlite(db).eventsourcing_env())
    try:
        stored = session_history(app, session_id)
        assert [s["version"] for s in steps] == [e.version for e in stored]
        for step in steps:
            rebuilt = ui_state(app.session(session_id, version=step["version"]))
            assert step["state"]["connection_state"] == rebuilt.connection_state
            assert step["state"]["status_text"] == rebuilt.status_text
            assert step["state"]["attempt"] == rebuilt.attempt
            assert step["cause"]["name"]
    finally:
        app.close()
    failed = next(s for s in steps if s["type"] == "Failed")
    assert failed["state"]["status_text"].startswith("Connection lost.")
    assert steps[-1]["state"]["connection_state"] == "failed"
    scheduled = [s for s in steps if s["type"] == "ReconnectScheduled"]
    assert [s["state"]["attempt"] for s in scheduled] == [1, 2, 3, 4, 5]
    assert all(s["state"]["next_retry_at"] for s in scheduled)


def test_replay_at_5_equals_the_aggregate_rebuilt_to_version_5(
    demo_store: tuple[Path, UUID],
) -> None:
    db, session_id = demo_store
    result = clara_es("replay", str(session_id), "--at", "5", "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["state"]
    app = VoiceSessions(Store.sqlite(db).eventsourcing_env())
    try:
        rebuilt = ui_state(app.session(session_id, version=5))
    finally:
        app.close()
    expected = rebuilt.model_dump(mode="json")
    assert {k: expected[k] for k in shown} == shown
    assert shown["version"] == 5


def test_replay_table_and_bad_points(demo_store: tuple[Path, UUID]) -> None:
    db, session_id = demo_store
    table = clara_es("replay", str(session_id), "--db", str(db))
    assert table.returncode == 0, table.stderr
    assert "ReconnectScheduled" in table.stdout and "attempt 5 of 5" in table.stdout
    for point, message in [("99", "version 99 is not in this session"),
                           ("yesterday", "neither a version"),
                           ("2000-01-01T00:00:00", "after 2000-01-01")]:
        bad = clara_es("replay", str(session_id), "--at", point, "--db", str(db))
        assert bad.returncode == 2
        assert bad.stderr.startswith("clara-es: error:") and message in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
