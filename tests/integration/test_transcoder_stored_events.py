"""The orjson decode (adapters/transcoder.py) gives what eventsourcing's stock decode gives on
stored events of every type: the legacy store's, a simulation's (a SQLite file) and the
agents'. Edge shapes the stock encoder can write: tests/unit/test_transcoder.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import commands
from clara_es.domain.events import SessionEvent
from clara_es.replay.simulate import simulate
from tests.support.scenarios import connected, poor
from tests.support.transcoders import transcoders

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_store" / "legacy.db"


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
