"""Keeps every view live: one runner thread for the group of views (one reader of the log),
restarted from the views' tracking positions whenever it stops with an error (a PostgreSQL
LISTEN connection that died, a lost database), and nudged on a slow timer in case a NOTIFY
was missed.

Across processes the group runs in one of them (the holder of its advisory lock); in the
others its thread stands by and tries the lock every `standby_interval`, so when the holder
dies the views resume elsewhere from their tracking positions within a second or two.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType

from clara_es.adapters.store import Store
from projections.heard import HeardLog
from projections.runner import ViewLocks, ViewRunner
from projections.view import View
from projections.views import select

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        store: Store,
        views: Iterable[type[View]] | None = None,
        *,
        poll_interval: float = 0.1,
        watchdog_interval: float = 5.0,
        restart_delay: float = 0.2,
        max_restart_delay: float = 5.0,
        standby_interval: float = 1.0,
        heard: HeardLog | None = None,
    ) -> None:
        self.store = store
        self.views = list(views) if views is not None else select()
        self.poll_interval = poll_interval
        self.watchdog_interval = watchdog_interval
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.standby_interval = standby_interval
        self.heard = heard
        self.restarts = 0
        self.nudges = 0
        self.locks = ViewLocks(store)
        self._leave: dict[str, threading.Event] = {}
        self.runners: dict[str, ViewRunner] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Supervisor:
        # One runner for the group: one reader of the log feeds every view.
        runner = ViewRunner(self.store, self.views, poll_interval=self.poll_interval,
                            heard=self.heard)
        self.runners[runner.name] = runner
        self._spawn(self._supervise, runner, f"projection-{runner.name}")
        if self.store.backend == "postgres":
            self._spawn(self._watchdog, None, "projection-watchdog")
            self._spawn(self._lock_keeper, None, "projection-locks")
        return self

    def _spawn(self, target: Callable[..., None], runner: ViewRunner | None, name: str) -> None:
        args = (runner,) if runner is not None else ()
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self, runner: ViewRunner) -> None:
        """Stand by until this process holds the view's lock, then keep it live while held."""
        while not self._stop.is_set():
            if not self.locks.acquire(runner.name):
                self._stop.wait(self.standby_interval)
                continue
            leave = self._leave[runner.name] = threading.Event()
            if self._stop.is_set():
                leave.set()
            log.info("event=view_active view=%s position=%s", runner.name, _position(runner))
            try:
                self._follow(runner, leave)
            finally:
                self.locks.release(runner.name)

    def _follow(self, runner: ViewRunner, leave: threading.Event) -> None:
        delay = self.restart_delay
        while not leave.is_set():
            started = time.monotonic()
            try:
                runner.follow(leave)
            except Exception as exc:
                if leave.is_set():
                    return
                self.restarts += 1
                log.warning(
                    "view %s stopped (%s: %s); restarting from its tracking position",
                    runner.name, type(exc).__name__, exc,
                )
                if time.monotonic() - started > self.max_restart_delay:
                    delay = self.restart_delay
                leave.wait(delay)
                delay = min(delay * 2, self.max_restart_delay)

    def _lock_keeper(self) -> None:
        """A lost lock connection means other processes may take the views: leave them."""
        while not self._stop.wait(self.standby_interval):
            for name in self.locks.check():
                log.warning("event=view_lock_lost view=%s", name)
                self._leave_view(name)

    def _leave_view(self, name: str) -> None:
        leave = self._leave.get(name)
        if leave is not None:
            leave.set()
        self.runners[name].interrupt()

    def _watchdog(self) -> None:
        """A view behind the log that did not move for a whole interval missed a NOTIFY."""
        seen: dict[str, int] = {}
        while not self._stop.wait(self.watchdog_interval):
            for name, runner in self.runners.items():
                if not self.locks.holds(name):
                    continue
                try:
                    position, head = runner.position(), runner.head()
                except Exception as exc:  # the runner's own restart deals with the database
                    log.info("watchdog could not read %s: %s", name, exc)
                    continue
                if position < head and seen.get(name) == position:
                    log.info("view %s stuck at %s of %s: catching up", name, position, head)
                    self.nudges += 1
                    runner.interrupt()
                seen[name] = position

    def wait_for(self, notification_id: int, timeout: float = 30.0) -> None:
        """Block until every view has applied `notification_id` (TimeoutError otherwise)."""
        for runner in self.runners.values():
            runner.view.wait(runner.app.name, notification_id, timeout=timeout)

    def stop(self) -> None:
        self._stop.set()
        for name in self.runners:
            self._leave_view(name)
        for thread in self._threads:
            thread.join(timeout=10)
        for runner in self.runners.values():
            runner.close()
        self.locks.close()

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _position(runner: ViewRunner) -> int | str:
    try:
        return runner.position()
    except Exception:  # only for the log line
        return "?"
