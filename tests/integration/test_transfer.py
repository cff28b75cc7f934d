"""`clara-es export` / `clara-es import`: one session as JSON lines, all or nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions, session_history
from clara_es.domain import commands
from clara_es.replay import transfer
from clara_es.replay.transfer import ImportRefused, export_lines, import_export, read_export
from tests.support.cli_runner import clara_es
from tests.support.scenarios import connected, racy_sessions

NOW = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UUID, Path]:
    """A demo store, its failed session, and that session exported through the CLI."""
    folder = tmp_path_factory.mktemp("transfer")
    db = folder / "demo.db"
    result = clara_es("demo", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    session_id = UUID(json.loads(result.stdout)["sessions"][1]["session_id"])
    exported = folder / "session.jsonl"
    out = clara_es("export", str(session_id), "--db", str(db), "-o", str(exported))
    assert out.returncode == 0, out.stderr
    return db, session_id, exported


def test_round_trip_into_a_fresh_sqlite_file_gives_the_same_history(
    demo: tuple[Path, UUID, Path], tmp_path: Path
) -> None:
    db, session_id, exported = demo
    fresh = tmp_path / "laptop.db"
    imported = clara_es("import", str(exported), "--db", str(fresh))
    assert imported.returncode == 0, imported.stderr
    events = len(exported.read_text().splitlines()) - 2  # header and footer
    assert f"imported {events} events as session {session_id}" in imported.stdout
    original = clara_es("history", str(session_id), "--json", "--db", str(db))
    copy = clara_es("history", str(session_id), "--json", "--db", str(fresh))
    assert original.returncode == copy.returncode == 0
    assert copy.stdout == original.stdout
    replayed = clara_es("replay", "--verify", str(session_id), "--db", str(fresh))
    assert replayed.returncode == 0, replayed.stdout


def _store_with_one_session(path: Path) -> tuple[UUID, int]:
    app = VoiceSessions(Store.sqlite(path).eventsourcing_env())
    try:
        session_id = connected(app)
        return session_id, app.recorder.max_notification_id() or 0
    finally:
        app.close()


def _edit(lines: list[str], number: int, old: str, new: str) -> list[str]:
    assert old in lines[number - 1]
    edited = list(lines)
    edited[number - 1] = edited[number - 1].replace(old, new, 1)
    return edited


def test_damaged_files_are_refused_with_line_and_reason_and_nothing_changes(
    demo: tuple[Path, UUID, Path], tmp_path: Path
) -> None:
    _, _, exported = demo
    lines = exported.read_text().splitlines()
    target = tmp_path / "target.db"
    existing, head = _store_with_one_session(target)
    failure = next(n for n, line in enumerate(lines, 1) if "ReconnectAttemptFailed" in line)
    cases = {
        "edited": (_edit(lines, failure, '"attempt":1', '"attempt":2'),
                   f"line {failure}: hash mismatch"),
        "truncated": (lines[:12], "line 12: the file ends before the export's last line"),
        "reordered": ([lines[0], lines[2], lines[1], *lines[3:]], "line 2: hash mismatch"),
        "foreign": (['{"format":"other-tool","hash":"x"}', *lines[1:]],
                    "line 1: not a clara-es session export"),
        "not JSON": ([lines[0], "{oops", *lines[2:]], "line 2: not JSON"),
        "extra text": ([*lines, lines[-1]], f"line {len(lines) + 1}: text after the end"),
    }
    for name, (content, reason) in cases.items():
        bad = tmp_path / f"{name}.jsonl"
        bad.write_text("\n".join(content) + "\n")
        result = clara_es("import", str(bad), "--db", str(target))
        assert result.returncode == 2, name
        assert result.stderr == f"clara-es: error: {reason}" + result.stderr.split(reason)[1]
        assert len(result.stderr.strip().splitlines()) == 1, name
    app = VoiceSessions(Store.sqlite(target).eventsourcing_env())
    try:
        assert app.recorder.max_notification_id() == head  # nothing was imported
        assert [e.type for e in session_history(app, existing)][-1] == "Connected"
    finally:
        app.close()
    assert not (tmp_path / "never-created.db").exists()
    missing_target = clara_es("import", str(tmp_path / "edited.jsonl"),
                              "--db", str(tmp_path / "never-created.db"))
    assert missing_target.returncode == 2
    assert not (tmp_path / "never-created.db").exists()  # refused before any store was opened


def test_import_on_both_stores_same_id_then_new_id(
    make_app: Any, clock: Any, tmp_path: Path
) -> None:
    source_store = Store.sqlite(tmp_path / "source.db")
    source = VoiceSessions(source_store.eventsourcing_env(), clock=clock)
    other_writer = VoiceSessions(source_store.eventsourcing_env(), clock=clock)
    try:
        racy = racy_sessions(source, other_writer, clock)
        lines = list(export_lines(source, racy.duplicate_outage, NOW))
        expected = session_history(source, racy.duplicate_outage)
    finally:
        source.close()
        other_writer.close()
    target = make_app()
    export = read_export(lines)
    first = import_export(target, export)
    assert first.session_id == racy.duplicate_outage
    assert session_history(target, first.session_id) == expected
    with pytest.raises(ImportRefused, match="already exists in this store"):
        import_export(target, export)
    copy = import_export(target, export, new_id=True)
    assert copy.session_id != racy.duplicate_outage and copy.events == len(expected)
    copied = session_history(target, copy.session_id)
    assert [(e.type, e.details, e.cause) for e in copied] == [
        (e.type, e.details, e.cause) for e in expected
    ]
    takes_new = commands.ReportDisconnected(reason="the copy takes new commands")
    target.handle(takes_new, copy.session_id)


def test_an_event_that_does_not_apply_is_refused(sqlite_store: Store, tmp_path: Path) -> None:
    """A file whose hashes were recomputed after an edit still has to replay cleanly."""
    app = VoiceSessions(sqlite_store.eventsourcing_env())
    try:
        session_id = connected(app)
        lines = list(export_lines(app, session_id, NOW))
    finally:
        app.close()
    records = [json.loads(line) for line in lines]
    del records[2]["state"]["cause"], records[2]["state"]["timestamp"]
    digest, forged = "", []
    for record in records:
        record.pop("hash")
        line, digest = transfer._line(record, digest)
        forged.append(line)
    export = read_export(forged)
    other = VoiceSessions(Store.sqlite(tmp_path / "other.db").eventsourcing_env())
    try:
        with pytest.raises(ImportRefused, match="line 3: the event does not apply"):
            import_export(other, export)
        assert other.recorder.max_notification_id() in (None, 0)
    finally:
        other.close()
