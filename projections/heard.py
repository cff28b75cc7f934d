"""The views' live source in a process that already follows the log (`serve` on PostgreSQL):
the rows its log follower read after each NOTIFY, handed to the views' runner, instead of a
second LISTEN connection and a second select of the same rows per NOTIFY (eventsourcing's
subscription, which `projections run` and a process without a follower keep).

The runner opens the queue before it catches up from its tracking positions: every event
committed after that reaches it through the queue (the recorder's table lock makes commit
order the log's order, so the follower reads them in order), and what the queue holds from
before the catch-up's read is skipped by position. When the follower may have missed events
(it started listening again after a lost connection) or the runner must catch up (the
supervisor's nudge, its stop), the queue says so and the runner catches up from the store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

# Notifications held for a runner that fell behind; past this the queue is dropped and the
# runner catches up from the store instead (the follower's thread never waits on the views).
HELD = 50_000


class HeardLog:
    """What the log follower read, queued for the views' runner while it follows (nothing is
    kept while no runner follows: a standby, or views kept by another process)."""

    def __init__(self, held: int = HELD) -> None:
        self.held = held
        self._cond = threading.Condition()
        self._batches: list[Sequence[Any]] | None = None  # None: no runner follows
        self._count = 0
        self._catch_up = False

    def heard(self, notifications: Sequence[Any]) -> None:
        """The follower's read after a NOTIFY (log order, not changed afterwards)."""
        with self._cond:
            if self._batches is None:
                return
            if self._count + len(notifications) > self.held:
                self._catch_up_locked()
                return
            self._batches.append(notifications)
            self._count += len(notifications)
            self._cond.notify()

    def missed(self) -> None:
        """The follower (re)started listening: what was appended before may be unheard."""
        self.interrupt()

    def interrupt(self) -> None:
        """The runner leaves `take` and catches up from the store."""
        with self._cond:
            if self._batches is not None:
                self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        assert self._batches is not None
        self._batches.clear()
        self._count = 0
        self._catch_up = True
        self._cond.notify()

    @contextlib.contextmanager
    def following(self) -> Iterator[HeardLog]:
        """Queue what is heard from now on (open it before the catch-up), until the end."""
        with self._cond:
            self._batches, self._count, self._catch_up = [], 0, False
        try:
            yield self
        finally:
            with self._cond:
                self._batches, self._count = None, 0

    def take(self, limit: int) -> list[Any] | None:
        """The next notifications heard (what is queued, up to about `limit`, in log order),
        waiting for them; None when the runner must catch up from the store instead."""
        with self._cond:
            while not self._catch_up and not self._batches:
                self._cond.wait()
            if self._catch_up or self._batches is None:
                return None
            taken: list[Any] = []
            while self._batches and (not taken or len(taken) + len(self._batches[0]) <= limit):
                taken.extend(self._batches.pop(0))
            self._count -= len(taken)
            return taken
