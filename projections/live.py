"""The live view runner's subscription on PostgreSQL: eventsourcing's LISTEN/NOTIFY
subscription, whose reads of the log gather the commits of a few milliseconds under a
stream of appends, and the batches it has read handed over together.

Under a stream of commands a view transaction's round trips cost as much for several events
as for one, and so does a select of the log: one of each per commit was a third of `serve`'s
follow-up CPU per command. A lone append (none in the last BUSY_S) is read and applied at
once; under a stream, a read waits GATHER_S for the commits that follow, which the views
then show that much later (the UI state read falls back to the session's stream anyway).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ShutDown, Subscription
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresSubscription

GATHER_S = 0.003
BUSY_S = 0.05


class GatheringSubscription(PostgresSubscription):
    """eventsourcing 9.5's PostgreSQL subscription, whose pull (one select of the log per
    NOTIFY heard, on its own thread) waits GATHER_S first when it pulled less than BUSY_S
    ago. Nothing is skipped: the select reads every notification after the last one read."""

    _pulled_at = float("-inf")  # the pull thread starts inside the base class's __init__

    def _pull(self) -> None:
        if time.monotonic() - self._pulled_at < BUSY_S and not self._has_been_stopped:
            time.sleep(GATHER_S)
        super()._pull()
        self._pulled_at = time.monotonic()


def subscribe(recorder: Any, gt: int) -> Subscription[Any]:
    if isinstance(recorder, PostgresApplicationRecorder):
        return GatheringSubscription(recorder=recorder, gt=gt)
    return recorder.subscribe(gt=gt)  # type: ignore[no-any-return]


def received(subscription: Subscription[Any], first: Any) -> list[Any]:
    """`first` and the notifications the subscription has already read after it (its one
    select brings every event committed meanwhile, up to 500) and queued since, so a burst
    is applied in one transaction instead of one per select. eventsourcing 9.5's
    ListenNotifySubscription keeps them in `_notifications` from `_notifications_index`, and
    queues its later selects in `_notifications_queue`; another subscription yields one at a
    time, as before."""
    rest = getattr(subscription, "_notifications", None)
    index = getattr(subscription, "_notifications_index", None)
    if not isinstance(rest, Sequence) or not isinstance(index, int):
        return [first]
    batch = [first, *rest[index:]]
    subscription._notifications_index = len(rest)  # type: ignore[attr-defined]
    pending = getattr(subscription, "_notifications_queue", None)
    while isinstance(pending, queue.Queue):
        try:
            batch.extend(pending.get_nowait())
        except (queue.Empty, ShutDown):
            break
        pending.task_done()
    return batch
