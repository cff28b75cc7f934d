"""Reading an outage back from a session's history as the HTTP API returns it (JSON rows)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

Row = dict[str, Any]


def at(row: Row) -> datetime:
    return datetime.fromisoformat(row["occurred_at"])


def attempt_delays(history: list[Row]) -> list[tuple[int, float, float]]:
    """(attempt, seconds from the fact that scheduled it to its start, the delay the schedule
    gave it) for every attempt started, measured between `occurred_at` times."""
    scheduled: dict[int, Row] = {}
    delays = []
    for row in history:
        attempt = row["details"].get("attempt")
        if row["type"] == "ReconnectScheduled":
            scheduled[attempt] = row
        elif row["type"] == "ReconnectAttempted":
            by = scheduled[attempt]
            delays.append((attempt, (at(row) - at(by)).total_seconds(),
                           by["details"]["delay_ms"] / 1000))
    return delays


def signals_by_key(history: list[Row]) -> dict[str, set[str]]:
    """Idempotency key -> the ids of the signals recorded under it (one when recorded once)."""
    found: dict[str, set[str]] = defaultdict(set)
    for row in history:
        key = row["cause"].get("idempotency_key")
        if key is not None:
            found[key].add(row["cause"]["id"])
    return dict(found)


def first_of_key(history: list[Row], key: str) -> Row:
    return next(r for r in history if r["cause"].get("idempotency_key") == key)
