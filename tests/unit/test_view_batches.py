"""The live view runner gathers the notifications its subscription has already read into one
batch: every one once, in log order, and none after the subscription is stopped."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Queue

from projections.live import received


class Subscription:
    """The parts of eventsourcing 9.5's ListenNotifySubscription that `received` reads."""

    def __init__(self, current: list[int], index: int, queued: list[list[int]]) -> None:
        self._notifications = current
        self._notifications_index = index
        self._notifications_queue: Queue[list[int]] = Queue(maxsize=10)
        for batch in queued:
            self._notifications_queue.put(batch)


def test_a_burst_read_in_several_selects_is_one_batch_in_log_order() -> None:
    sub: Any = Subscription([1, 2, 3], 1, [[4], [5, 6]])
    assert received(sub, 1) == [1, 2, 3, 4, 5, 6]
    assert sub._notifications_index == 3
    assert sub._notifications_queue.empty()


def test_nothing_is_taken_twice() -> None:
    sub: Any = Subscription([1, 2], 1, [[3]])
    assert received(sub, 1) == [1, 2, 3]
    sub._notifications_queue.put([4, 5])
    sub._notifications, sub._notifications_index = sub._notifications_queue.get(), 1  # __next__
    assert received(sub, 4) == [4, 5]


def test_a_stopped_subscription_ends_the_gathering() -> None:
    sub: Any = Subscription([1], 1, [[2]])
    sub._notifications_queue.shutdown(immediate=False)
    assert received(sub, 1) == [1, 2]


def test_another_subscription_yields_one_at_a_time() -> None:
    assert received(object(), 7) == [7]  # type: ignore[arg-type]
