"""The injected clock, for coroutines: the agent's and the client's timers await it.

AsyncVirtualClock shares a VirtualClock with the application, so the events its sleepers
cause carry virtual timestamps, and a 40-second outage runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from clara_es.domain import SystemClock, VirtualClock


class AsyncClock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, instant: datetime) -> None:
        """Return once `instant` has come (at once if it has passed)."""
        ...


class AsyncSystemClock:
    def __init__(self) -> None:
        self._clock = SystemClock()

    def now(self) -> datetime:
        return self._clock.now()

    async def sleep_until(self, instant: datetime) -> None:
        await asyncio.sleep(max(0.0, (instant - self.now()).total_seconds()))


class AsyncVirtualClock:
    """Virtual time for coroutines: sleepers wait until the clock is advanced.

    Advancing wakes the sleepers in the order they are due, moving the clock to each one's
    instant first, and lets the woken tasks run to their next wait before going on.
    """

    # In-memory tasks reach their next wait within a few turns of the event loop; this is a
    # count of turns, not a duration, so it does not depend on the machine's speed.
    SETTLE_TURNS = 20

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock or VirtualClock()
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self.clock.now()

    async def sleep_until(self, instant: datetime) -> None:
        if instant <= self.now():
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (instant, next(self._order), future))
        await future

    @property
    def next_wakeup(self) -> datetime | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        return await self.advance_to(self.now() + step)

    async def advance_to(self, instant: datetime) -> datetime:
        await self.settle()
        while (due := self.next_wakeup) is not None and due <= instant:
            _, _, future = heapq.heappop(self._sleepers)
            self.clock.advance_to(due)
            future.set_result(None)
            await self.settle()
        self.clock.advance_to(instant)
        await self.settle()
        return self.now()

    async def run_until(
        self, done: Callable[[], bool], limit: timedelta = timedelta(minutes=10)
    ) -> datetime:
        """Jump from wakeup to wakeup until `done()`; fail if it needs more than `limit`."""
        deadline = self.now() + limit
        await self.settle()
        while not done():
            due = self.next_wakeup
            if due is None or due > deadline:
                raise TimeoutError(
                    f"not done by {deadline.isoformat()} (virtual); next wakeup: {due}"
                )
            await self.advance_to(due)
        return self.now()

    async def settle(self) -> None:
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
