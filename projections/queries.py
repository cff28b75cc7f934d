"""Reading the views (SQLAlchemy Core, the same code on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from psycopg.errors import UndefinedTable

from clara_es.application import EventRecord, VoiceSessions
from clara_es.domain import UIState
from projections.attempt_counts import COUNTERS, attempt_counts_table
from projections.db import ViewsMissing
from projections.history import history_table, sessions_where
from projections.stats import stats_failures, stats_recoveries, stats_sessions
from projections.ui_state import ui_state_table
from projections.views import VIEWS

APPLICATION = VoiceSessions.name
DEFAULT_GRACE = timedelta(minutes=5)
# The longest grace time an orphan check takes (the CLI and HTTP bound, one rule).
LONGEST_GRACE_S = 86_400 * 365


class HistoryRow(EventRecord):
    """A record of the history view: where it is in the log, and whose session it is."""

    notification_id: int
    room: str
    participant: str


@contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    try:
        with engine.connect() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        if isinstance(exc.orig, UndefinedTable) or "no such table" in str(exc.orig):
            raise ViewsMissing(
                "the views are not on this database yet: run `clara-es db upgrade`, "
                "then `clara-es projections run` (or `rebuild`)"
            ) from None
        raise


def utc(value: datetime | None) -> datetime | None:
    """Times are stored in UTC; a time without a zone is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def positions(engine: sa.Engine) -> dict[str, int]:
    """Each view's position in the notification log (0: nothing applied yet), in one query."""
    with reading(engine) as conn:
        row = conn.execute(_positions()).one()
    return {name: row[i] or 0 for i, name in enumerate(VIEWS)}


@cache
def _positions() -> sa.Select[Any]:
    return sa.select(*(
        sa.select(view.tracking.c.notification_id)
        .where(view.tracking.c.application_name == APPLICATION)
        .scalar_subquery().label(name)
        for name, view in VIEWS.items()
    ))


def _ui_state(data: dict[str, Any]) -> UIState:
    """A row of the UI-state view (by column name) as the state it stores."""
    data["next_retry_at"] = utc(data["next_retry_at"])
    data["updated_at"] = utc(data["updated_at"])
    return UIState.model_validate(data)


def status(engine: sa.Engine, session_id: UUID) -> UIState | None:
    """One session's row of the UI-state view. The most frequent read of the API: one fixed
    statement straight to the driver (psycopg prepares it after a few uses), without building
    and compiling a SQLAlchemy statement and its result for every read (about half its CPU)."""
    sql = _status_sql(engine.dialect.paramstyle)
    params = (str(session_id),)
    with reading(engine) as conn:
        cursor = None
        try:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(sql, params)
            row = cursor.fetchone()
            cursor.close()
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor):
                conn.invalidate(exc)
            # As SQLAlchemy raises it (OperationalError, ProgrammingError, ...).
            raise sa.exc.DBAPIError.instance(
                sql, params, exc, engine.dialect.loaded_dbapi.Error) from exc
    if row is None:
        return None
    data = dict(zip(_UI_STATE_COLUMNS, row, strict=True))
    for name in ("next_retry_at", "updated_at"):
        data[name] = _time(data[name])
    return _ui_state(data)


_UI_STATE_COLUMNS = tuple(c.name for c in ui_state_table.c)


@cache
def _status_sql(paramstyle: str) -> str:
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[paramstyle]
    return (f"SELECT {', '.join(_UI_STATE_COLUMNS)} FROM {ui_state_table.name} "
            f"WHERE session_id = {mark}")


def _time(value: datetime | str | None) -> datetime | None:
    """SQLite's driver gives SQLAlchemy's stored text of a time; PostgreSQL's a datetime."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def sessions(
    engine: sa.Engine, state: str | None = None, room: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Sessions (UI state and attempt counts), the most recently updated first."""
    u, c = ui_state_table, attempt_counts_table
    counts = [c.c[name] for name in COUNTERS.values()]
    stmt = (
        sa.select(u, *counts)
        .select_from(u.outerjoin(c, c.c.session_id == u.c.session_id))
        .order_by(u.c.updated_at.desc(), u.c.session_id)
        .limit(limit)
    )
    if state:
        stmt = stmt.where(u.c.connection_state == state)
    if room:
        stmt = stmt.where(u.c.room == room)
    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
    result = []
    for row in rows:
        data = _ui_state(dict(row._mapping)).model_dump()
        data["counts"] = {name: getattr(row, name) or 0 for name in COUNTERS.values()}
        result.append(data)
    return result


def history(
    engine: sa.Engine,
    *,
    session_id: UUID | None = None,
    room: str | None = None,
    participant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Sequence[str] = (),
    limit: int = 1000,
) -> list[HistoryRow]:
    """Stored events in log order, filtered; `since` is inclusive, `until` exclusive."""
    h = history_table
    stmt = sa.select(h).order_by(h.c.notification_id).limit(limit)
    if session_id is not None:
        stmt = stmt.where(h.c.session_id == str(session_id))
    if room:
        stmt = stmt.where(sessions_where("room", room))
    if participant:
        stmt = stmt.where(sessions_where("participant", participant))
    if since is not None:
        stmt = stmt.where(h.c.occurred_at >= utc(since))
    if until is not None:
        stmt = stmt.where(h.c.occurred_at < utc(until))
    if types:
        stmt = stmt.where(h.c.type.in_(list(types)))
    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
    return [
        HistoryRow(
            **{
                **row._mapping,
                "occurred_at": utc(row.occurred_at),
                "cause": json.loads(row.cause),
                "details": json.loads(row.details),
            }
        )
        for row in rows
    ]


def percentile(values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]


def stats(
    engine: sa.Engine, now: datetime | None = None, grace: timedelta = DEFAULT_GRACE
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    s, r, f = stats_sessions, stats_recoveries, stats_failures
    with reading(engine) as conn:
        by_state = dict(
            conn.execute(sa.select(s.c.state, sa.func.count()).group_by(s.c.state)).all()
        )
        recovered = conn.execute(sa.select(sa.func.count()).where(s.c.recovered)).scalar() or 0
        outage_ms = sorted(conn.execute(sa.select(r.c.outage_ms)).scalars())
        failed_at = [utc(t) for t in conn.execute(sa.select(f.c.failed_at)).scalars()]
        per_room = conn.execute(
            sa.select(f.c.room, sa.func.count()).group_by(f.c.room).order_by(f.c.room)
        ).all()
        orphans = conn.execute(
            sa.select(s.c.session_id, s.c.room, s.c.state, s.c.final_at)
            .where(s.c.final_at.is_not(None), s.c.cleaned_up_at.is_(None))
            .where(s.c.final_at < utc(now - grace))
            .order_by(s.c.final_at)
        ).all()
    resolved = len(outage_ms) + len(failed_at)
    per_hour = Counter(t.replace(minute=0, second=0, microsecond=0) for t in failed_at if t)
    return {
        "sessions": sum(by_state.values()),
        "sessions_by_state": by_state,
        "recovered_sessions": recovered,
        "failed_sessions": by_state.get("failed", 0),
        "recoveries": len(outage_ms),
        "failures": len(failed_at),
        "recovery_rate": round(len(outage_ms) / resolved, 4) if resolved else None,
        "time_to_recover_ms": {
            "p50": percentile(outage_ms, 50),
            "p95": percentile(outage_ms, 95),
            "max": outage_ms[-1] if outage_ms else None,
        },
        "failures_per_hour": [
            {"hour": hour, "failures": n} for hour, n in sorted(per_hour.items())
        ],
        "failures_per_room": [{"room": room, "failures": n} for room, n in per_room],
        "orphans": {
            "grace_seconds": grace.total_seconds(),
            "sessions": [
                {"session_id": o.session_id, "room": o.room, "state": o.state,
                 "final_at": utc(o.final_at)}
                for o in orphans
            ],
        },
    }
