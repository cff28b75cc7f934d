"""The domain and the application on eventsourcing's in-memory stores: no server, no file.

Each application test runs on POPO (plain Python objects) and on SQLite in memory, whose
recorder is the SQL one the file store uses. Every application has a store of its own: tests
of two writers on one store, or of a second process reading it, are integration tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest

from clara_es.application import VoiceSessions
from clara_es.domain import UIState, VirtualClock, commands
from tests.support.apps import AppFactory, closing_apps
from tests.support.scenarios import connected


def memory_env(kind: str) -> dict[str, str]:
    """A new, empty in-memory store of the kind."""
    if kind == "popo":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    # Shared cache: every connection of the application's pool sees the same database.
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": f"file:{uuid.uuid4().hex}.db?mode=memory&cache=shared",
    }


@pytest.fixture(params=["popo", "sqlite_memory"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_app(store_kind: str, clock: VirtualClock) -> Iterator[AppFactory]:
    """Builds VoiceSessions, each on a new in-memory store; closes them after."""
    with closing_apps(lambda: memory_env(store_kind), clock) as factory:
        yield factory


@pytest.fixture
def app(make_app: AppFactory) -> VoiceSessions:
    return make_app()


@dataclass
class Dropped:
    """A connected session whose network just dropped: attempt 1 is due in a second."""

    app: VoiceSessions
    clock: VirtualClock
    session_id: UUID
    state: UIState


@pytest.fixture
def dropped() -> Dropped:
    clock = VirtualClock()
    app = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    sid = connected(app, "room", "alice")
    return Dropped(app, clock, sid, app.handle(commands.ReportDisconnected(reason="wifi off"), sid))
