"""The command line keeps what README.md and each command's help say, on real SQLite files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clara_es.cli import main


def clara_es(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def refused(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2 and out == ""
    assert err.startswith("clara-es: error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_demo_ends_with_the_checklist_passed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLARA_ES_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, _ = clara_es(capsys, "demo")
    assert code == 0
    checks = [line.split()[:2] for line in out.splitlines() if line.strip()[:4] in ("PASS", "FAIL")]
    assert checks == [["PASS", f"{n}."] for n in range(1, 9)]
    assert list(tmp_path.iterdir()) == []


def test_demo_keeps_its_store_where_the_database_url_says(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLARA_ES_DATABASE_URL", f"sqlite:///{tmp_path / 'kept.db'}")
    code, out, _ = clara_es(capsys, "demo", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["database"] == str(tmp_path / "kept.db")
    assert all(check["passed"] for check in doc["checklist"])
    code, out, _ = clara_es(capsys, "sessions", "--json")
    assert code == 0 and len(json.loads(out)) == 2


def test_demo_creates_no_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = refused(clara_es(capsys, "demo", "--db", str(tmp_path / "absent" / "d.db")))
    assert "no folder" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--factor", "inf", "factor"),
    ("--base-delay-ms", "99999999999999", "24 hours"),
])
def test_a_policy_outside_its_bounds_is_one_line(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, says: str,
) -> None:
    assert says in refused(clara_es(capsys, "demo", flag, value))


def test_races_since_names_its_own_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    assert "--since 'xyz'" in refused(clara_es(capsys, "races", "--since", "xyz", "--db",
                                               str(tmp_path / "x.db")))


def test_db_upgrade_takes_the_revision_as_the_readme_writes_it_and_never_goes_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    db = str(tmp_path / "views.db")
    code, out, _ = clara_es(capsys, "db", "upgrade", "head", "--db", db)
    assert code == 0 and "views at revision" in out
    assert "only moves forward" in refused(
        clara_es(capsys, "db", "upgrade", "--revision", "base", "--db", db))
    code, out, _ = clara_es(capsys, "db", "upgrade", "--db", db)
    assert code == 0


def test_a_store_from_a_newer_version_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    import sqlite3

    db = tmp_path / "views.db"
    assert clara_es(capsys, "db", "upgrade", "--db", str(db))[0] == 0
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    conn.close()
    err = refused(clara_es(capsys, "db", "upgrade", "--db", str(db)))
    assert "0099_from_the_future" in err and "upgrade clara-es" in err


def test_the_readme_documents_every_setting() -> None:
    from clara_es.config import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [f"CLARA_ES_{name.upper()}" for name in Settings.model_fields
               if f"CLARA_ES_{name.upper()}" not in readme]
    assert missing == []


@pytest.fixture
def demo_copy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[int], tuple[str, dict[str, Any]]]:
    """The demo's store, with demo session `which` exported and imported under a new id (the
    views have not seen the copy yet): the store and what `import --json` answered."""
    monkeypatch.delenv("CLARA_ES_DATABASE_URL", raising=False)

    def copy(which: int) -> tuple[str, dict[str, Any]]:
        db, export = str(tmp_path / "s.db"), str(tmp_path / "one.jsonl")
        _, out, _ = clara_es(capsys, "demo", "--db", db, "--json")
        session_id = json.loads(out)["sessions"][which]["session_id"]
        assert clara_es(capsys, "export", session_id, "--db", db, "-o", export)[0] == 0
        _, out, _ = clara_es(capsys, "import", export, "--new-id", "--db", db, "--json")
        return db, json.loads(out)

    return copy


def test_status_after_import_answers_from_the_stream_and_says_why(
    capsys: pytest.CaptureFixture[str], demo_copy: Callable[[int], tuple[str, dict[str, Any]]]
) -> None:
    db, imported = demo_copy(1)
    copy = imported["session_id"]
    code, out, err = clara_es(capsys, "status", copy, "--db", db, "--json")
    assert code == 0
    assert json.loads(out)["connection_state"] == "failed"
    assert "views have not caught up" in err


def test_answers_from_views_that_lag_say_so_until_they_catch_up(
    capsys: pytest.CaptureFixture[str], demo_copy: Callable[[int], tuple[str, dict[str, Any]]]
) -> None:
    db, imported = demo_copy(0)
    events = imported["events"]
    reads = (["sessions"], ["stats"], ["history", "--room", "demo"], ["sessions", "--json"])
    for args in reads:
        code, _, err = clara_es(capsys, *args, "--db", db)
        assert code == 0
        assert f"clara-es: note: the views are {events} events behind the event log" in err
    assert clara_es(capsys, "projections", "rebuild", "--db", db)[0] == 0
    for args in reads:
        code, _, err = clara_es(capsys, *args, "--db", db)
        assert code == 0 and err == "", args
