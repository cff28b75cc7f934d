"""The composition root: settings are read once, reach every part, and --db wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clara_es.bootstrap import SettingsError, bootstrap
from clara_es.cli import cli
from clara_es.config import Settings
from clara_es.process import InMemoryAudioPipeline
from tests.support.settings import count_settings


@pytest.fixture
def settings_read(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Every Settings built from now on."""
    return count_settings(monkeypatch)


def test_the_db_option_wins_over_the_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLARA_ES_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert bootstrap(tmp_path / "given.db").store.sqlite_path == tmp_path / "given.db"
    assert bootstrap().store.sqlite_path == tmp_path / "from-env.db"

    monkeypatch.setenv("CLARA_ES_DATABASE_URL", "mysql://nobody@127.0.0.1/elsewhere")
    result = CliRunner().invoke(cli, ["demo", "--db", str(tmp_path / "given.db"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database"] == str(tmp_path / "given.db")
    assert (tmp_path / "given.db").exists()
    assert not (tmp_path / "from-env.db").exists()


def test_a_command_reads_the_settings_once_and_every_part_follows_them(
    tmp_path: Path, settings_read: list[Settings]
) -> None:
    env = {"CLARA_ES_CLEANUP_GRACE_S": "5", "CLARA_ES_LIVEKIT_URL": None}
    result = CliRunner().invoke(cli, ["demo", "--db", str(tmp_path / "demo.db"), "--json"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert len(settings_read) == 1
    outage = [e for e in json.loads(result.stdout)["timeline"] if e["session"] == "B"]
    failed = next(e for e in outage if e["type"] == "Failed")
    skipped = next(e for e in outage if e["type"] == "CleanupSkipped")
    assert skipped["t_ms"] - failed["t_ms"] == 5_000  # the grace time of the environment


def test_the_worker_the_manager_and_the_cleaner_share_the_roots_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLARA_ES_PIPELINE_RESTART_CAP", "7")
    monkeypatch.delenv("CLARA_ES_LIVEKIT_URL", raising=False)
    root = bootstrap(tmp_path / "x.db")
    app = root.open_sessions()
    worker = root.worker(app, InMemoryAudioPipeline())
    try:
        assert worker.settings is root.settings
        assert worker.manager.settings is root.settings
        assert root.settings.pipeline_restart_cap == 7
        assert type(worker.cleaner).__name__ == "SkippedRoomCleaner"
    finally:
        worker.close()
        app.close()


def test_bad_settings_are_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLARA_ES_ATTEMPT_TIMEOUT_S", "-1")
    with pytest.raises(SettingsError, match="CLARA_ES_ATTEMPT_TIMEOUT_S"):
        bootstrap(tmp_path / "x.db")
    result = CliRunner().invoke(cli, ["sessions", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "CLARA_ES_ATTEMPT_TIMEOUT_S" in result.stderr
