"""The real process manager's worker on the simulation's virtual clock, woken the way `run`
wakes it on wall time.

`clara-es run` (`Worker.run_forever`) catches up with the log and claims what is due, then
waits for the next due job or the poll interval, whichever comes first. `Paced` does the same
on the virtual clock, on a grid of `poll_interval_s` from the start: it wakes at the tick of the
next due job, and at the next tick while the simulation may have appended facts since it last
looked. Each wake runs the worker's own `run_pending` (catch-up, claim, execute in due order),
so one catch-up takes in every fact of a poll interval in one pass, as it does live.

Between wakes nothing is asked of the store: the due rows change only when the worker
catches up or runs a job (nobody else writes them in a simulation), so the next due time is
read once after each wake.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clara_es.process.worker import Worker

_UNKNOWN = object()


class Paced:
    def __init__(self, worker: Worker, origin: datetime) -> None:
        self.worker = worker
        self.clock = worker.clock
        self.origin = origin
        self.poll = timedelta(seconds=worker.settings.poll_interval_s)
        self.moved = True  # facts may have been appended since the last wake
        self.due: object = _UNKNOWN

    def close(self) -> None:
        self.worker.close()

    def appended(self) -> None:
        """The simulation did something that may have appended facts."""
        self.moved = True

    def _next_due(self) -> datetime | None:
        if self.due is _UNKNOWN:
            self.due = self.worker.next_due()
        return self.due  # type: ignore[return-value]

    def _tick_from(self, instant: datetime, *, after: bool) -> datetime:
        """The first poll tick after `instant` (or at it)."""
        ticks, rest = divmod(instant - self.origin, self.poll)
        return self.origin + (ticks + (1 if after or rest else 0)) * self.poll

    def next_wake(self) -> datetime | None:
        """When the worker looks next: the poll tick of its next due job, or the next poll if
        it has facts to catch up with; None when it has nothing to wait for. On the ticks only:
        a session's facts and timers are then handled at times no other session decides, so
        a session's run does not depend on which sessions share its process (simulate's
        shards, `--only`); a timer fires at most one poll interval late."""
        due = self._next_due()
        due_tick = None if due is None else self._tick_from(due, after=False)  # type: ignore[arg-type]
        if not self.moved:
            return due_tick
        tick = self._tick_from(self.clock.now(), after=True)
        return tick if due_tick is None else min(due_tick, tick)

    def wake(self) -> int:
        """At the wake time: catch up and run everything due now. How many jobs ran."""
        due = self.due
        idle = due is not _UNKNOWN and (due is None or due > self.clock.now())  # type: ignore[operator]
        ran = self.worker.run_pending(nothing_due=idle)
        self.moved, self.due = False, _UNKNOWN
        return ran
