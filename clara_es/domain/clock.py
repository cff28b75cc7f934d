"""Time as the domain sees it: injected, so tests and the demo run on virtual time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def sleep_until(self, instant: datetime) -> None:
        """Return once `instant` has come (at once if it has passed)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, instant: datetime) -> None:
        time.sleep(max(0.0, (instant - self.now()).total_seconds()))


class VirtualClock:
    """A clock that only moves when told to. Starts at a fixed instant by default."""

    EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or self.EPOCH
        if self._now.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += step
        return self._now

    def advance_to(self, instant: datetime) -> datetime:
        """Move forward to an instant; an instant in the past leaves the clock where it is."""
        self._now = max(self._now, instant)
        return self._now

    def sleep_until(self, instant: datetime) -> None:
        self.advance_to(instant)
