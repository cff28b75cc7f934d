"""`clara-es replay --verify`: stored signals re-run through today's code, differences named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.cli import cli
from clara_es.domain import Actor, Signal, VirtualClock, VoiceSession, commands
from clara_es.replay.verify import verify_session, verify_sessions
from tests.support.cli_runner import clara_es
from tests.support.regressions import one_attempt_too_many
from tests.support.scenarios import connected, racy_sessions


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UUID, UUID]:
    db = tmp_path_factory.mktemp("verify") / "demo.db"
    result = clara_es("demo", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    recovered, failed = json.loads(result.stdout)["sessions"]
    return db, UUID(recovered["session_id"]), UUID(failed["session_id"])


def test_unmodified_code_reports_no_difference(demo: tuple[Path, UUID, UUID]) -> None:
    db, _, _ = demo
    result = clara_es("replay", "--verify", "--all", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "sessions_checked": 2, "differences": [], "early_attempts": []}


def test_a_planted_regression_names_the_affected_session_and_its_first_differing_event(
    demo: tuple[Path, UUID, UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, recovered, failed = demo
    one_attempt_too_many(monkeypatch)
    result = CliRunner().invoke(cli, ["replay", "--verify", "--all", "--json", "--db", str(db)])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["sessions_checked"] == 2
    [difference] = report["differences"]  # the 5-second drop never reached attempt 5
    assert difference["session_id"] == str(failed)
    assert difference["signal"] == "attempt_failed"
    assert difference["stored"]["type"] == "Failed"
    assert difference["today"]["type"] == "ReconnectScheduled"
    assert difference["today"]["details"]["attempt"] == 6
    assert difference["version"] == difference["stored"]["version"]
    table = CliRunner().invoke(cli, ["replay", "--verify", str(failed), "--db", str(db)])
    assert table.exit_code == 1
    assert "1 of 1 sessions decide differently today" in table.output
    assert "stored Failed, today ReconnectScheduled" in " ".join(table.output.split())
    clean = CliRunner().invoke(cli, ["replay", "--verify", str(recovered), "--db", str(db)])
    assert clean.exit_code == 0 and "1 sessions verified" in clean.output


def test_every_race_and_every_kind_of_signal_re_runs_the_same(
    make_app: Any, clock: VirtualClock
) -> None:
    app = make_app()
    racy_sessions(app, make_app(), clock)
    edges = connected(app, "room-edges", "carol")
    app.handle(commands.ChangeQuality.build(participant="carol", quality="poor"), edges)
    app.handle(commands.ConfirmPoorQuality.build(participant="carol"), edges)
    app.handle(commands.StartResume.build(), edges)
    blink = commands.ChangeAgentConnection.build(connection="reconnecting", reason="agent blink")
    app.handle(blink, edges)
    app.handle(commands.ReportParticipantLeft.build(reason="network", actor=Actor.AGENT), edges)
    app.handle(commands.ChangeAgentConnection.build(connection="connected"), edges)
    app.handle(commands.ReportParticipantLeft.build(reason="network", actor=Actor.CLIENT), edges)
    app.handle(commands.ReportParticipantJoined.build(), edges)
    joined = commands.WebhookParticipantJoined(webhook_id="WH_1", room="room-edges")
    app.handle(joined, edges)
    app.handle(joined, edges)
    app.handle(commands.FinishRoom.build(), edges)
    checked, differences = verify_sessions(app)
    assert checked == 7
    assert differences == []


def test_a_regression_in_a_race_decision_is_caught(
    make_app: Any, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    racy = racy_sessions(app, make_app(), clock)
    original = VoiceSession.disconnect

    def schedules_twice(self: VoiceSession, reason: str, signal: Signal) -> None:
        if self.state == "reconnecting":
            self._schedule(1, signal)  # the bug: a second report starts a second schedule
        else:
            original(self, reason, signal)

    monkeypatch.setattr(VoiceSession, "disconnect", schedules_twice)
    _, differences = verify_sessions(app)
    assert [(d.session_id, d.note) for d in differences] == [
        (racy.duplicate_outage, "stored SignalIgnored, today ReconnectScheduled")
    ]


def test_a_session_stored_before_signals_were_recorded_is_reported_not_rerun(
    sqlite_store: Store,
) -> None:
    app = VoiceSessions(sqlite_store.eventsourcing_env(), clock=VirtualClock())
    try:
        session_id = connected(app)
        stored = app.recorder.select_events(session_id)
        first = json.loads(stored[0].state)
        del first["actor"], first["cause"]
        other = UUID(int=session_id.int ^ 1)
        app.recorder.insert_events([
            type(stored[0])(other, 1, stored[0].topic, json.dumps(first).encode())
        ])
        difference = verify_session(app, other)
        assert difference is not None and difference.version == 1
        assert "stored before signals were recorded" in difference.note
        assert verify_session(app, session_id) is None
    finally:
        app.close()
