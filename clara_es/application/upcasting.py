"""Events stored before causality was recorded still read back.

Early session events carried no `actor` or `cause`. The aggregate's event methods require
both, so the mapper fills them in when a stored event lacks them, marked as unknown.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from clara_es.domain.events import SessionEvent

UNKNOWN_ACTOR = "unknown"


def unknown_cause() -> dict[str, Any]:
    return {"id": None, "name": "unknown", "args": {}, "read_version": None}


class CausalMapper(Mapper[UUID]):
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        if isinstance(domain_event, SessionEvent):
            state = domain_event.__dict__
            state.setdefault("actor", UNKNOWN_ACTOR)
            state.setdefault("cause", unknown_cause())
        return domain_event
