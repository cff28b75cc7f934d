"""A store written before the house issue reads, replays and verifies exactly as it did then.

tests/fixtures/legacy_store/ holds the store and what the code of its day read back from it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.cli import main

FIXTURE = Path(__file__).parent.parent / "fixtures" / "legacy_store"
GOLDEN: dict[str, Any] = json.loads((FIXTURE / "golden.json").read_text())
SESSIONS = sorted(k for k in GOLDEN if k != "races")


@pytest.fixture
def legacy_db(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.db"
    shutil.copy(FIXTURE / "legacy.db", path)
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--json"])
    assert exit_.value.code == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_every_stored_event_decodes_to_the_same_class_and_attributes(legacy_db: Path) -> None:
    app = VoiceSessions(Store.sqlite(legacy_db).eventsourcing_env())
    for session_id in SESSIONS:
        events = [
            {"class": type(e).__name__, **{k: _plain(v) for k, v in e.__dict__.items()}}
            for e in app.repository.event_store.get(UUID(session_id))
        ]
        assert events == GOLDEN[session_id]["events"], session_id


def test_history_and_replay_read_as_before(
    legacy_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for session_id in SESSIONS:
        history = _cli_json(capsys, "history", session_id, "--db", str(legacy_db))
        assert history == GOLDEN[session_id]["history"], session_id
        replay = _cli_json(capsys, "replay", session_id, "--db", str(legacy_db))
        assert replay == GOLDEN[session_id]["replay"], session_id


def test_races_read_as_before(legacy_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli_json(capsys, "races", "--db", str(legacy_db)) == GOLDEN["races"]


def test_today_s_code_decides_every_stored_session_the_same(
    legacy_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verified = _cli_json(capsys, "replay", "--verify", "--all", "--db", str(legacy_db))
    assert verified["sessions_checked"] == len(SESSIONS)
    assert verified["differences"] == []
