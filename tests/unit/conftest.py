"""Unit fixtures: the application on eventsourcing's in-memory store, on a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest

from clara_es.application import VoiceSessions
from clara_es.domain import UIState, VirtualClock


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
    sid = app.start("room", "alice").session_id
    app.connect(sid)
    app.connected(sid)
    return Dropped(app, clock, sid, app.disconnected(sid, "wifi off"))
