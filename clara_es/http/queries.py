"""Every read the HTTP API serves, in one place: the projections' views, plus the aggregate
where a view cannot answer yet (a session started a moment ago, not yet projected).

The live feed (sse.py) reads the session's own stream instead: it must see every version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel

from clara_es.application import VoiceSessions
from clara_es.domain import Clock, UIState
from clara_es.http.freshness import Freshness
from clara_es.process.due import Backlog, backlog
from projections import queries
from projections.history import history_table
from projections.queries import HistoryRow
from projections.ui_state import ui_state_table

__all__ = ["HistoryRow", "Reads", "SessionSummary", "Stats"]

EFFECT_OUTCOMES = (
    "PipelineRestarted", "PipelineRestartFailed", "SessionCleanedUp", "CleanupFailed",
    "CleanupSkipped",
)


class SessionSummary(UIState):
    counts: dict[str, int]


class TimeToRecover(BaseModel):
    p50: int | None
    p95: int | None
    max: int | None


class HourFailures(BaseModel):
    hour: datetime
    failures: int


class RoomFailures(BaseModel):
    room: str
    failures: int


class Orphan(BaseModel):
    session_id: UUID
    room: str
    state: str
    final_at: datetime | None


class Orphans(BaseModel):
    grace_seconds: float
    sessions: list[Orphan]


class Stats(BaseModel):
    sessions: int
    sessions_by_state: dict[str, int]
    recovered_sessions: int
    failed_sessions: int
    recoveries: int
    failures: int
    recovery_rate: float | None
    time_to_recover_ms: TimeToRecover
    failures_per_hour: list[HourFailures]
    failures_per_room: list[RoomFailures]
    orphans: Orphans


OWNERS_KEPT = 100_000


class Reads:
    def __init__(
        self, app: VoiceSessions, views: sa.Engine, clock: Clock, wait_s: float = 2.0,
        behind_ttl_s: float = 0.0,
    ) -> None:
        self.app = app
        # Reads only: no transaction around them (PostgreSQL reads each statement in a
        # snapshot of its own anyway, at READ COMMITTED), which saves the BEGIN and the
        # ROLLBACK round trips of every read.
        self.views = (
            views.execution_options(isolation_level="AUTOCOMMIT")
            if views.dialect.name == "postgresql" else views
        )
        self.clock = clock
        self._owners: dict[UUID, tuple[str, str]] = {}
        self.fresh = Freshness(views, self.head, wait_s, behind_ttl_s=behind_ttl_s)

    def head(self) -> int:
        """The event log's last notification id."""
        return self.app.recorder.max_notification_id() or 0

    def owner(self, session_id: UUID) -> tuple[str, str]:
        """(room, participant) of a session, for access checks. A session's start fixes them
        for good, so each is read from the aggregate once per process (up to OWNERS_KEPT
        sessions): a read or a command checks access without a read of the event store."""
        known = self._owners.get(session_id)
        if known is None:
            session = self.app.session(session_id)
            known = (session.room, session.participant)
            if len(self._owners) >= OWNERS_KEPT:
                self._owners.clear()
            self._owners[session_id] = known
        return known

    def status(self, session_id: UUID, min_version: int = 0) -> UIState:
        """From the view, or from the stream when the view has not reached `min_version`."""
        return self.status_from(session_id, min_version)[0]

    def status_from(self, session_id: UUID, min_version: int = 0) -> tuple[UIState, str]:
        """The UI state and where it was read: "view", or "stream" (view missing or behind)."""
        state = queries.status(self.views, session_id)
        if state is not None and state.version >= min_version:
            return state, "view"
        return self.app.status(session_id), "stream"

    def sessions(
        self, state: str | None, room: str | None, limit: int, offset: int
    ) -> list[SessionSummary]:
        rows = queries.sessions(self.views, state=state, room=room, limit=offset + limit)
        return [SessionSummary.model_validate(r) for r in rows[offset:]]

    def history(
        self,
        session_id: UUID,
        *,
        since: datetime | None,
        until: datetime | None,
        types: Sequence[str],
        limit: int,
    ) -> list[HistoryRow]:
        rows = queries.history(
            self.views, session_id=session_id, since=since, until=until, types=types,
            limit=limit,
        )
        if not rows:
            self.owner(session_id)  # SessionNotFound for a session that does not exist
        return rows

    def stats(self, grace: timedelta) -> Stats:
        return Stats.model_validate(queries.stats(self.views, now=self.clock.now(), grace=grace))

    def lag(self) -> dict[str, int]:
        """How many notifications each view is behind the event log."""
        head = self.head()
        return {name: head - position for name, position in queries.positions(self.views).items()}

    def sessions_by_state(self) -> dict[str, int]:
        return self.stats(queries.DEFAULT_GRACE).sessions_by_state

    def backlog(self) -> Backlog:
        """The process manager's due work waiting past its time (any process's)."""
        return backlog(self.views, self.clock.now(), self.app.recorder.max_notification_id())

    def pending_timers(self) -> int:
        """Reconnect attempts scheduled and not yet made (a due time in the UI-state view)."""
        u = ui_state_table
        stmt = sa.select(sa.func.count()).where(u.c.next_retry_at.is_not(None))
        with queries.reading(self.views) as conn:
            return conn.execute(stmt).scalar() or 0

    def effects(self) -> dict[str, int]:
        """Outcomes of the process manager's effects, counted by event type in the history."""
        h = history_table
        stmt = (
            sa.select(h.c.type, sa.func.count())
            .where(h.c.type.in_(EFFECT_OUTCOMES))
            .group_by(h.c.type)
        )
        with queries.reading(self.views) as conn:
            return dict(conn.execute(stmt).all())
