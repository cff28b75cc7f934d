"""A runner keeps a group of views up to date: one reader of the log catches up from the
views' tracking positions in batches, decoding each event once for every view, then follows
new events live, and resumes from the tracking positions after any restart.

Live following differs by backend. PostgreSQL: the rows the process's log follower read
after each NOTIFY (`HeardLog`, in `serve`), else eventsourcing's own subscription
(LISTEN/NOTIFY); one transaction per burst read. SQLite: its recorder has no subscribe(), so
the runner polls the notification log.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Subscription, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import Environment

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from projections.changes import decode
from projections.heard import HeardLog
from projections.recorders import Positions, ViewRecorder, recorder_class
from projections.view import Logged, View

log = logging.getLogger(__name__)

BATCH = 5000
# One-shot work (a rebuild, `projections catch-up`) replays much of the log: one transaction
# per this many events writes each session's rows once per batch instead of once per 5,000
# events (the live runner keeps BATCH: its memory and its commits' latency stay small).
ONE_SHOT_BATCH = 50_000
# POSTGRES_POOL_SIZE / POSTGRES_MAX_OVERFLOW in the environment win over the store's budget
# (the tests keep them small).
POOL_VARS = ("POSTGRES_POOL_SIZE", "POSTGRES_MAX_OVERFLOW")


class ViewProjection(Projection[ViewRecorder]):
    """An eventsourcing Projection whose view is a group of views (rows + tracking, one commit)."""

    def __init__(self, view: ViewRecorder, app: VoiceSessions) -> None:
        super().__init__(view)
        self.app = app

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """One event and its tracking, the shape eventsourcing's runners deliver."""
        expected = self.view.positions(tracking.application_name)
        logged = Logged(tracking.notification_id, domain_event, str(domain_event.originator_id))
        self.view.apply_batch([logged], tracking, expected)

    def process_batch(self, notifications: list[Any], expected: Positions | int | None) -> int:
        """Decode notifications (in log order) once, apply them to every view after its
        `expected` position (one for all, or each view's), and move the positions; returns
        the new position."""
        if not isinstance(expected, dict):
            expected = dict.fromkeys(self.view.names, expected)
        last = notifications[-1].id
        tracking = Tracking(self.app.name, last)
        with collector_paused():
            self.view.apply_batch(decode(self.app, notifications), tracking, expected)
        return last


_paused = 0
_paused_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a batch is decoded and applied: a batch keeps its
    thousands of events alive until it commits, and each collection would walk them all (a
    third of a rebuild's time). Nothing is freed later than the batch's end; nested and
    concurrent batches keep it off until the last one ends."""
    global _paused
    with _paused_lock:
        _paused += 1
        if _paused == 1:
            was_enabled = gc.isenabled()
            gc.disable()
            _was_enabled[0] = was_enabled
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled[0]:
                gc.enable()


_was_enabled = [True]


def advanced(positions: Positions, to: int) -> Positions:
    return {name: max(position or 0, to) for name, position in positions.items()}


def group_name(views: Sequence[type[View]]) -> str:
    """A group's name: its runner's, and its advisory lock's."""
    return "+".join(view.name for view in views)


def received(subscription: Subscription[Any], first: Any) -> list[Any]:
    """`first` and the notifications the subscription has already read after it (its one
    select of the log after a NOTIFY brings every event committed meanwhile, up to 500), so
    a burst is applied in one transaction instead of one per event. eventsourcing 9.5's
    ListenNotifySubscription keeps them in `_notifications` from `_notifications_index`;
    another subscription yields one at a time, as before."""
    rest = getattr(subscription, "_notifications", None)
    index = getattr(subscription, "_notifications_index", None)
    if not isinstance(rest, Sequence) or not isinstance(index, int) or index >= len(rest):
        return [first]
    subscription._notifications_index = len(rest)  # type: ignore[attr-defined]
    return [first, *rest[index:]]


class ViewsBusy(RuntimeError):
    """Another process keeps these views live: one-shot work on them would race it."""


class ViewRunner:
    def __init__(
        self,
        store: Store,
        views: type[View] | Sequence[type[View]],
        *,
        poll_interval: float = 0.1,
        batch: int = BATCH,
        env: Mapping[str, str] | None = None,
        heard: HeardLog | None = None,
    ) -> None:
        self.store = store
        self.heard = heard
        group = (views,) if isinstance(views, type) else tuple(views)
        self.names = [view.name for view in group]
        self.name = group_name(group)
        self.poll_interval = poll_interval
        self.batch = batch
        # Pools as the store says (the settings' budget): the app's (reads) and the view's.
        pool = {name: os.environ[name] for name in POOL_VARS if name in os.environ}
        base_env = {**store.eventsourcing_env(), **pool, **(env or {})}
        self.app = VoiceSessions(base_env)
        self._factory = InfrastructureFactory[ViewRecorder].construct(
            env=Environment(self.name, base_env)
        )
        recorder = self._factory.tracking_recorder(recorder_class(group, store.backend))
        self.projection = ViewProjection(recorder, self.app)
        self._subscription: Subscription[Any] | None = None
        self._lock = threading.Lock()

    @property
    def view(self) -> ViewRecorder:
        return self.projection.view

    def position(self) -> int:
        return self.view.max_tracking_id(self.app.name) or 0

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def catch_up(
        self,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Apply every stored event after the views' positions, in batches read once for
        every view of the group; returns the group's position."""
        positions = self.view.positions(self.app.name)
        position = min(p or 0 for p in positions.values())
        while stop is None or not stop.is_set():
            # The select too: its tens of thousands of notifications live until the commit.
            with collector_paused():
                notifications = self.app.recorder.select_notifications(
                    start=position, limit=self.batch, inclusive_of_start=False
                )
                if not notifications:
                    break
                position = self.projection.process_batch(list(notifications), positions)
            positions = advanced(positions, position)
            if progress is not None:
                progress(position)
        return position

    def follow(self, stop: threading.Event) -> None:
        """Catch up, then follow live until `stop` is set. Errors propagate (supervisor)."""
        while not stop.is_set():
            if self.store.backend != "postgres":
                self.catch_up(stop)
                stop.wait(self.poll_interval)
            elif self.heard is not None:
                # Open before the catch-up: what is committed after its read is queued.
                with self.heard.following() as heard:
                    if not stop.is_set():
                        self.catch_up(stop)
                        self._follow_heard(heard, stop)
            else:
                self.catch_up(stop)
                self._listen(stop)

    def _follow_heard(self, heard: HeardLog, stop: threading.Event) -> None:
        """Apply what the log follower reads, one transaction per burst, until it (or
        `interrupt`) says to catch up from the store."""
        positions = self.view.positions(self.app.name)
        position = min(p or 0 for p in positions.values())
        while not stop.is_set():
            batch = heard.take(self.batch)
            if batch is None:
                return
            if batch[0].id <= position:  # read before the catch-up's select
                batch = [n for n in batch if n.id > position]
                if not batch:
                    continue
            position = self.projection.process_batch(batch, positions)
            positions = advanced(positions, position)

    def _listen(self, stop: threading.Event) -> None:
        positions = self.view.positions(self.app.name)
        subscription = self.app.recorder.subscribe(gt=min(p or 0 for p in positions.values()))
        with self._lock:
            self._subscription = subscription
        if stop.is_set():
            subscription.stop()
        try:
            with subscription:
                for notification in subscription:
                    batch = received(subscription, notification)
                    self.projection.process_batch(batch, positions)
                    positions = advanced(positions, batch[-1].id)
        finally:
            with self._lock:
                self._subscription = None

    def interrupt(self) -> None:
        """Leave the live subscription (if any); `follow` then catches up and listens again."""
        if self.heard is not None:
            self.heard.interrupt()
        with self._lock:
            if self._subscription is not None:
                self._subscription.stop()

    def close(self) -> None:
        self.interrupt()
        self.app.close()
        self._factory.close()


class ViewLocks:
    """Which views this process runs: on PostgreSQL, one session-level advisory lock per view
    (`pg_try_advisory_lock`) on one connection of this process, so each view has exactly one
    active runner across every process on the database; the others stand by. A process that
    dies loses its connection and with it its locks, and a standby takes the view over.
    On SQLite (one process per file) every view is this process's."""

    def __init__(self, store: Store) -> None:
        self.store = store
        env = store.eventsourcing_env()
        self.prefix = f"clara-es view {env.get('POSTGRES_SCHEMA') or 'public'} "
        self._conn: Any = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def acquire(self, name: str) -> bool:
        """Take the view's lock if it is free (False also while the database is away)."""
        try:
            return self._try(name)
        except Exception as exc:  # the database is away: stand by, try again
            log.info("view lock for %s not taken: %s", name, exc)
            return False

    def _try(self, name: str) -> bool:
        if self.store.backend != "postgres":
            return True
        with self._lock:
            try:
                conn = self._connection()
                row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                                   (self.prefix + name,)).fetchone()
            except Exception:
                self._drop()
                raise
            if row is not None and row[0]:
                self._held.add(name)
                return True
            return False

    def holds(self, name: str) -> bool:
        return self.store.backend != "postgres" or name in self._held

    def check(self) -> set[str]:
        """Confirm the lock connection lives; the views whose locks were lost with it."""
        if self.store.backend != "postgres":
            return set()
        with self._lock:
            if self._conn is None:
                return set()
            try:
                self._conn.execute("SELECT 1")
                return set()
            except Exception:
                lost = set(self._held)
                self._drop()
                return lost

    @contextlib.contextmanager
    def exclusive(self, names: Sequence[str]) -> Iterator[None]:
        """Hold the locks of these groups for one-shot work (a rebuild), so no live runner
        follows them meanwhile (standbys wait, then resume from the rebuilt positions);
        ViewsBusy at once if a runner holds one; the database's own errors as they are."""
        taken: list[str] = []
        try:
            for name in dict.fromkeys(names):
                if not self._try(name):
                    raise ViewsBusy(
                        f"the views ({name.replace('+', ', ')}) are kept live by another "
                        "process on this database (`clara-es serve`, `run` or `projections "
                        "run`); a rebuild beside it would race for their positions")
                taken.append(name)
            yield
        finally:
            for name in taken:
                self.release(name)

    def release(self, name: str) -> None:
        with self._lock:
            if name in self._held and self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))",
                                       (self.prefix + name,))
            self._held.discard(name)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.store.connect_postgres()
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._held.clear()
