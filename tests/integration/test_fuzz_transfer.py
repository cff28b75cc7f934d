"""hypothesis against the export reader (`clara-es import`): any bytes or lines are refused
with the line and the reason, and an export whose records were changed and whose hash chain
was then recomputed (the hashes are not a signature) is imported whole or refused with
nothing written; never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clara_es.application import VoiceSessions
from clara_es.domain import SystemClock, commands
from clara_es.replay import transfer
from clara_es.replay.transfer import ImportRefused, export_lines, import_export, read_export
from tests.support.scenarios import connected

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8)


def refused_by_line(exc: ImportRefused) -> None:
    message = str(exc)
    assert message.startswith("line ") and ": " in message, message


@given(data=st.one_of(st.binary(max_size=300),
                      st.lists(st.text(max_size=60), max_size=6).map(
                          lambda lines: "\n".join(lines).encode())))
@FUZZ
def test_any_bytes_are_refused_by_line(data: bytes) -> None:
    try:
        read_export(data.splitlines(keepends=True))
    except ImportRefused as exc:
        refused_by_line(exc)
    else:
        raise AssertionError(f"read as an export: {data!r}")


def rechained(records: list[dict[str, Any]]) -> list[str]:
    lines, digest = [], ""
    for record in records:
        line, digest = transfer._line(record, digest)
        lines.append(line)
    return lines


@st.composite
def edits(draw: st.DrawFn, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One to three changes to the parsed records: a value replaced, a key dropped or added,
    a record dropped, duplicated or moved."""
    records = json.loads(json.dumps(records))
    for _ in range(draw(st.integers(1, 3))):
        if not records:
            break
        index = draw(st.integers(0, len(records) - 1))
        record = records[index]
        action = draw(st.sampled_from(["replace", "drop_key", "add_key", "state", "drop",
                                       "duplicate", "move"]))
        if action in ("replace", "drop_key") and record:
            key = draw(st.sampled_from(sorted(record)))
            if action == "replace":
                record[key] = draw(JSON)
            else:
                del record[key]
        elif action == "add_key":
            record[draw(st.text(max_size=8))] = draw(JSON)
        elif action == "state" and isinstance(record.get("state"), dict) and record["state"]:
            key = draw(st.sampled_from(sorted(record["state"])))
            record["state"][key] = draw(JSON)
        elif action == "drop":
            records.pop(index)
        elif action == "duplicate":
            records.insert(index, json.loads(json.dumps(record)))
        elif action == "move":
            records.insert(draw(st.integers(0, len(records) - 1)), records.pop(index))
    return records


def test_an_edited_export_with_a_recomputed_chain_is_imported_whole_or_not_at_all(
    app: VoiceSessions,
) -> None:
    session_id = connected(app)
    app.handle(commands.ReportDisconnected(reason="wifi"), session_id)
    lines = list(export_lines(app, session_id, SystemClock().now()))
    records = [{k: v for k, v in json.loads(line).items() if k != "hash"} for line in lines]
    outcomes = {"imported": 0, "refused": 0}

    @given(changed=edits(records))
    @FUZZ
    def fuzz(changed: list[dict[str, Any]]) -> None:
        before = app.recorder.max_notification_id() or 0
        try:
            imported = import_export(app, read_export(rechained(changed)), new_id=True)
        except ImportRefused as exc:
            assert (app.recorder.max_notification_id() or 0) == before, str(exc)
            outcomes["refused"] += 1
            return
        # Imported: all of it, and the session reads back.
        assert (app.recorder.max_notification_id() or 0) == before + imported.events
        assert app.session(imported.session_id).version == imported.events
        outcomes["imported"] += 1

    fuzz()
    assert outcomes["refused"] > 0
