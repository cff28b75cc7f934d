"""Shared by the projection tests: event streams built fast, and view tables read back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import Actor, BackoffPolicy, Signal, VirtualClock, VoiceSession
from projections import queries
from projections.catch_up import rebuild
from projections.db import engine
from projections.views import VIEWS


def _signal(clock: VirtualClock, name: str) -> Signal:
    return Signal(name=name, actor=Actor.CLIENT, at=clock.now())


def _script(session: VoiceSession, index: int, clock: VirtualClock) -> list[Callable[[], None]]:
    """Steps of one session: connect, one outage that recovers or fails, maybe an end.

    `index` varies the number of failed attempts (0..5; 5 means Failed) and the ending.
    """
    failures = index % 6
    steps: list[Callable[[], None]] = [
        lambda: session.connect(_signal(clock, "connect")),
        lambda: session.mark_connected(_signal(clock, "connected")),
        lambda: session.disconnect("network", _signal(clock, "disconnected")),
    ]
    for attempt in range(1, failures + 1):
        steps.append(lambda a=attempt: session.start_attempt(a, _signal(clock, "attempt")))
        steps.append(
            lambda a=attempt: session.fail_attempt(a, "unreachable", _signal(clock, "failed"))
        )
    if failures < 5:
        steps.append(lambda: session.start_attempt(failures + 1, _signal(clock, "attempt")))
        steps.append(lambda: session.reconnect(_signal(clock, "reconnected")))
        if index % 3 == 0:
            steps.append(lambda: session.disconnect("network", _signal(clock, "disconnected")))
            steps.append(lambda: session.disconnect("network", _signal(clock, "disconnected")))
    if index % 4 == 0:
        steps.append(lambda: session.end("user", _signal(clock, "end")))
    return steps


def build_streams(
    app: VoiceSessions, clock: VirtualClock, sessions: int, *, rooms: int = 7, per_save: int = 100
) -> list[VoiceSession]:
    """Many sessions, their events interleaved in the log, saved in few transactions."""
    aggregates = [
        VoiceSession.start(
            f"room-{i % rooms}", f"user-{i}", BackoffPolicy(), _signal(clock, "start")
        )
        for i in range(sessions)
    ]
    scripts = [_script(s, i, clock) for i, s in enumerate(aggregates)]
    for start in range(0, sessions, per_save):
        app.save(*aggregates[start : start + per_save])
    for step in range(max(len(s) for s in scripts)):
        clock.advance(timedelta(milliseconds=700))
        for i, script in enumerate(scripts):
            if step < len(script):
                script[step]()
            if (i + 1) % per_save == 0:
                app.save(*aggregates[i + 1 - per_save : i + 1])
        app.save(*aggregates[sessions - sessions % per_save :])
    return aggregates


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table (tracking tables included), in primary-key order."""
    rows = {}
    view_engine = engine(store)
    try:
        with view_engine.connect() as conn:
            for view in VIEWS.values():
                for table in (*view.tables, view.tracking):
                    order = list(table.primary_key.columns)
                    rows[table.name] = [
                        tuple(r) for r in conn.execute(sa.select(table).order_by(*order))
                    ]
    finally:
        view_engine.dispose()
    return rows


def assert_rebuild_matches(
    store: Store, names: tuple[str, ...] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Dropping the views (all, or those `names`) and applying the log again gives exactly the
    rows they hold now (answered)."""
    live = snapshot(store)
    rebuild(store, [VIEWS[name] for name in names] if names is not None else None)
    assert snapshot(store) == live
    return live


def positions(store: Store) -> dict[str, int]:
    view_engine = engine(store)
    try:
        return queries.positions(view_engine)
    finally:
        view_engine.dispose()
