"""The orjson decode (adapters/transcoder.py) gives what eventsourcing's stock decode gives,
on stored events of every type and on the shapes the stock encoder can write."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from clara_es.adapters.store import Store
from clara_es.adapters.transcoder import OrjsonTranscoder
from clara_es.application import VoiceSessions
from clara_es.domain import commands
from clara_es.domain.events import SessionEvent
from clara_es.replay.simulate import simulate
from tests.support.scenarios import connected, poor

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_store" / "legacy.db"


def transcoders() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    app = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    stock, fast = JSONTranscoder(), OrjsonTranscoder()
    app.register_transcodings(stock)
    app.register_transcodings(fast)
    return stock, fast


def logged(app: VoiceSessions) -> list[tuple[str, bytes]]:
    return [(n.topic, n.state) for n in app.recorder.select_notifications(start=1, limit=10**6)]


def agent_facts() -> list[tuple[str, bytes]]:
    """The agents' events, which neither the legacy store nor the simulator records."""
    app = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    session_id = connected(app)
    poor(app, session_id)
    _, events = app.handle_with_events(commands.RequestPipelineRestart(cap=3), session_id)
    request_id = str(events[-1].request_id)  # type: ignore[attr-defined]
    app.handle(commands.ClaimPipelineRestart(request_id=request_id, agent="a"), session_id)
    app.handle(commands.ReportAgentError(source="tts", error="closed: é, ü", recoverable=True),
               session_id)
    app.handle(commands.ReportAgentClosed(reason="participant_disconnected"), session_id)
    return logged(app)


def test_every_stored_event_type_decodes_as_the_stock_transcoder_does(tmp_path: Path) -> None:
    db = sqlite3.connect(f"{LEGACY.as_uri()}?mode=ro", uri=True)
    try:
        stored = [(str(t), bytes(s)) for table in ("stored_events", "stored_snapshots")
                  for t, s in db.execute(f"SELECT topic, state FROM {table}")]
    finally:
        db.close()
    store = Store.sqlite(tmp_path / "sim.db")
    simulate(6, 3, store=store, check_projections=False)
    with VoiceSessions(store.eventsourcing_env()) as app:
        stored += logged(app)
    stored += agent_facts()
    kinds = {topic.rsplit(".", 1)[-1] for topic, _ in stored}
    assert {cls.__name__ for cls in SessionEvent.__subclasses__()} <= kinds
    stock, fast = transcoders()
    for _, state in stored:
        # repr: also the types (1 == 1.0 == True)
        assert repr(fast.decode(state)) == repr(stock.decode(state))


@pytest.mark.parametrize("value", [
    {"a": [{"u": uuid4(), "t": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)}, [Decimal("1.50")]]},
    {"t": datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=-3))), "n": None, "b": True},
    [1, 1.0, -0.0, 1e300, 2**63 - 1, -(2**63), "x", [], {}],
    {"_type_": "uuid_hex", "_data_": "x", "other": 1},  # three keys: a plain object
    {"_type_": "uuid_hex"}, {"_data_": 1, "x": 2},
    {"big": 2**70, "nan": float("nan")},  # orjson refuses these: the stock decoder takes them
    {"text": "é\u2028\U0001f600", "s": "\\\"\n"},
    "scalar", 3,
])
def test_every_shape_the_stock_encoder_writes_decodes_the_same(value: Any) -> None:
    stock, fast = transcoders()
    data = stock.encode(value)
    assert repr(fast.decode(data)) == repr(stock.decode(data))


def test_text_the_stock_encoder_does_not_write_still_decodes_the_same() -> None:
    stock, fast = transcoders()
    for data in (b'{"s":"\\ud800"}', b'[NaN,Infinity,-Infinity]', b'{"a":1,"a":2}'):
        assert repr(fast.decode(data)) == repr(stock.decode(data))


def test_an_unknown_transcoding_is_refused_as_the_stock_transcoder_refuses_it() -> None:
    stock, fast = transcoders()
    data = b'{"a":[{"_type_":"nope","_data_":1}]}'
    for transcoder in (stock, fast):
        with pytest.raises(TranscodingNotRegisteredError, match="nope"):
            transcoder.decode(data)
