"""The process manager takes the facts its own process saved only where they continue its
position exactly; anything else is left for a read of the log."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from clara_es.application import VoiceSessions
from clara_es.process.saved import SavedFacts
from tests.support.scenarios import connected


def saved(facts: SavedFacts, *ids: int) -> None:
    """Recordings as a save hands them over (any thread, any order)."""
    facts._saved([SimpleNamespace(notification=SimpleNamespace(id=i), domain_event=f"e{i}")
                  for i in ids])


def test_the_saves_of_the_application_are_taken_in_log_order(app: VoiceSessions) -> None:
    facts = SavedFacts(app, keep=100)
    connected(app)  # three commands: started, connecting, connected
    ids, events, more = facts.after(0, limit=100)
    assert not more
    assert ids == [1, 2, 3]
    assert [e.originator_version for e in events] == [1, 2, 3]
    assert [type(e).__name__ for e in events] == [type(e).__name__ for e in
                                                 app.events_after(events[0].originator_id, 0)]


def test_closed_it_keeps_nothing_more(app: VoiceSessions) -> None:
    facts = SavedFacts(app, keep=100)
    connected(app)
    facts.close()
    facts.close()  # twice: the worker and its owner may both close it
    connected(app, "room-2")
    assert facts.after(0, limit=100)[0] == [1, 2, 3]


def test_a_sole_writer_refuses_appends_its_listeners_would_not_see() -> None:
    app = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, sole_writer=True)
    with pytest.raises(RuntimeError, match="sole writer"):
        app.insert_stored([])


def test_a_gap_ends_what_is_taken() -> None:
    facts = SavedFacts(SimpleNamespace(on_saved=lambda _l: lambda: None), keep=100)  # type: ignore[arg-type]
    saved(facts, 5, 6, 8, 9)  # 7 was appended by another process
    assert facts.after(4, limit=100) == ([5, 6], ["e5", "e6"], True)  # more past the gap
    assert facts.after(6, limit=100) == ([], [], True)  # 7 must be read from the log
    assert facts.after(7, limit=100)[0] == [8, 9]


def test_facts_not_continuing_the_position_are_not_taken() -> None:
    facts = SavedFacts(SimpleNamespace(on_saved=lambda _l: lambda: None), keep=100)  # type: ignore[arg-type]
    saved(facts, 12, 11)  # two threads' saves handed over out of order
    assert facts.after(10, limit=100) == ([], [], True)
    saved(facts, 13)
    assert facts.after(12, limit=100)[0] == [13]  # what the log read covered is dropped
    assert facts.after(13, limit=100) == ([], [], False)
    assert not facts.facts


def test_at_most_limit_and_at_most_keep() -> None:
    facts = SavedFacts(SimpleNamespace(on_saved=lambda _l: lambda: None), keep=3)  # type: ignore[arg-type]
    saved(facts, 1, 2, 3, 4, 5)  # the oldest two fell out
    assert facts.after(0, limit=10) == ([], [], True)
    assert facts.after(2, limit=2) == ([3, 4], ["e3", "e4"], True)
    assert facts.after(4, limit=2)[0] == [5]
