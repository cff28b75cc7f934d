"""Everything one HTTP process holds: the application, the views, the live feeds, the
webhook receiver, the token check, the metrics; opened and closed as one."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from eventsourcing.persistence import Notification

from clara_es.adapters.livekit.deliveries import WebhookDeliveries
from clara_es.adapters.livekit.webhooks import LiveKitWebhooks
from clara_es.adapters.notify import LogListener, LogTail
from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import BackoffPolicy, Clock, SystemClock
from clara_es.http.auth import Authenticator
from clara_es.http.metrics import Metrics
from clara_es.http.queries import Reads
from clara_es.http.sse import Changes
from projections import db as views_db
from projections.heard import HeardLog
from projections.supervisor import Supervisor

log = logging.getLogger(__name__)

# Background work sharing the process (the process manager of `clara-es run`): it gets the
# application and a stop event, and returns when the event is set.
Runner = Callable[[VoiceSessions, threading.Event], None]
T = TypeVar("T")


class LiveSessions(VoiceSessions):
    """VoiceSessions that wake the live feeds of every session it appends to: the API's
    commands, the webhooks, and the process manager when it runs in this process."""

    name = VoiceSessions.name  # the same application (tables, tracking) as every other process
    changes: Changes

    def _notify(self, recordings: list[Any]) -> None:
        super()._notify(recordings)
        self.changes.publish(r.domain_event for r in recordings)

    def heard(self, notifications: list[Notification]) -> None:
        """Appends of any process (the log follower's thread): the events of the sessions
        followed here, decoded once for all their feeds; a type this code cannot decode
        makes its feeds re-read their streams."""
        changes = self.changes
        events, unknown = [], set()
        for notification in notifications:
            if not changes.wanted(notification.originator_id, notification.originator_version):
                continue  # no feed here, or this process handed it to the feeds already
            try:
                events.append(self.mapper.to_domain_event(notification))
            except Exception:
                unknown.add(notification.originator_id)
        changes.publish(events)
        changes.notify_many(unknown)


@dataclass
class Options:
    # Seconds between re-reads of a live feed's session while the process's log follower is
    # not following (not started yet, or its connection lost).
    feed_poll: float = 1.0
    # The same once the log follower follows (it hands every append of any process to the
    # feeds; it wakes them all again after it reconnects): a safety net only.
    feed_poll_listening: float = 30.0
    # Seconds between reads of the log's tail on SQLite (no notifications): how soon the feeds
    # hear of other processes' appends.
    feed_tail_s: float = 0.025
    # Seconds between polls of the event log by the view runners (SQLite; PostgreSQL listens).
    view_poll: float = 0.1
    # /readyz fails while a view is more than this many events behind the log.
    max_lag: int = 1000
    # Keep the views live in this process (off when another process runs the projections).
    follow_views: bool = True
    # /readyz fails while a due timer or effect waits longer than this past its time.
    max_overdue_s: float = 30.0
    # The largest request body read; a longer one is 413, before its token is checked.
    max_body_bytes: int = 1_048_576
    # Seconds a request (or /readyz) waits on the store before it answers 503.
    store_timeout_s: float = 5.0
    # Seconds a webhook id is remembered: a redelivery within them changes nothing.
    webhook_window_s: float = 86400.0
    # Origins whose pages may call the API from a browser (CORS); none: same origin only.
    cors_origins: tuple[str, ...] = ()
    # Seconds a read waits for the views to show the caller's own writes (read-your-writes).
    read_wait_s: float = 2.0
    # Seconds a measure of how far the views are behind the log (`X-Clara-Views-Behind`) is
    # reused by the next reads (0: measured for every read).
    views_behind_ttl_s: float = 0.1
    # Threads that run the API's commands (0: one on SQLite, whose appends take one write lock
    # in turn, so more threads only queue for it; the store's connection budget on PostgreSQL).
    command_threads: int = 0
    # Seconds the background work gets to stop on shutdown; jobs still running after that are
    # left to their leases (the next process claims them) instead of holding the exit up.
    stop_grace_s: float = 3.0


class Service:
    def __init__(
        self,
        store: Store,
        *,
        api_key: str,
        api_secret: str,
        clock: Clock | None = None,
        policy: BackoffPolicy | None = None,
        options: Options | None = None,
        background: dict[str, Runner] | None = None,
    ) -> None:
        self.store = store
        self.options = options or Options()
        self.clock: Clock = clock or SystemClock()
        self.authenticator = Authenticator(api_key, api_secret)
        if store.sqlite_path is not None:
            store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self.changes = Changes()
        self.app = LiveSessions(store.eventsourcing_env(), clock=self.clock, policy=policy)
        self.app.changes = self.changes
        views_db.upgrade(store)
        self.views = ping_when_idle(views_db.engine(store, **_pool(store)))
        self.reads = Reads(self.app, self.views, self.clock, self.options.read_wait_s,
                           self.options.views_behind_ttl_s)
        self.webhooks = LiveKitWebhooks(
            self.app, api_key, api_secret, deliveries=WebhookDeliveries(
                self.views, self.clock, timedelta(seconds=self.options.webhook_window_s)),
        )
        self.metrics = Metrics(self)
        self.commands = ThreadPoolExecutor(command_threads(store, self.options),
                                           thread_name_prefix="command")
        self.supervisor: Supervisor | None = None
        self.listener: LogListener | LogTail | None = None
        # The PostgreSQL follower's reads, for the views when this process keeps them.
        self.heard_views = HeardLog()
        self.background = background or {}
        self.crashed: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Service:
        if self.listener is None:
            # One follower of the log for every feed of this process, and on PostgreSQL for
            # the views it keeps (no LISTEN connection and no select per NOTIFY of their own).
            if self.store.backend == "postgres":
                self.listener = LogListener(self.store, self.app.recorder,
                                            self._heard, self._missed).start()
            else:
                self.listener = LogTail(self.app.recorder, self.app.heard,
                                        self.changes.notify_all,
                                        interval_s=self.options.feed_tail_s).start()
        if self.options.follow_views and self.supervisor is None:
            heard = self.heard_views if isinstance(self.listener, LogListener) else None
            self.supervisor = Supervisor(self.store, poll_interval=self.options.view_poll,
                                         heard=heard).start()
        for name, runner in self.background.items():
            thread = threading.Thread(target=self._guarded, args=(name, runner), name=name)
            thread.start()
            self._threads.append(thread)
        return self

    async def command(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a command thread: the API's writes run there, not in the thread
        pool of sync routes, whose threads would all queue for the store's one writer (and
        the queueing costs CPU: wake-ups, hand-overs of the GIL)."""
        return await asyncio.wrap_future(self.commands.submit(work, *args))

    def _heard(self, notifications: list[Notification]) -> None:
        self.heard_views.heard(notifications)  # first: the views' thread starts meanwhile
        self.app.heard(notifications)

    def _missed(self) -> None:
        self.heard_views.missed()
        self.changes.notify_all()

    @property
    def feed_poll(self) -> float:
        """Seconds between a live feed's re-reads of its stream."""
        listening = self.listener is not None and self.listener.listening.is_set()
        return self.options.feed_poll_listening if listening else self.options.feed_poll

    def _guarded(self, name: str, runner: Runner) -> None:
        try:
            runner(self.app, self._stop)
        except Exception:
            # The API keeps answering; /readyz and the log say what stopped.
            log.exception("background runner %s crashed", name)
            self.crashed.append(name)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the views have applied everything appended so far."""
        if self.supervisor is not None:
            self.supervisor.wait_for(self.app.recorder.max_notification_id() or 0, timeout)

    def close(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + self.options.stop_grace_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        left = [thread.name for thread in self._threads if thread.is_alive()]
        if left:
            # Each append is one transaction: a job cut off here appended all or nothing, and
            # its lease ends without it, so the next process runs it (effects are idempotent).
            # The store stays open for it until the process ends.
            log.warning("event=stop_unfinished runners=%s grace_s=%g detail=%r", ",".join(left),
                        self.options.stop_grace_s,
                        "jobs still running are left to their leases: the next process "
                        "claims them")
            return
        self.commands.shutdown(wait=True)
        self.app.close()
        self.views.dispose()


# A pooled connection idle longer than this is pinged before use (a busy API reuses its
# connections within milliseconds: a ping per read cost a round trip for every one of them).
IDLE_PING_S = 1.0


def ping_when_idle(engine: sa.Engine, idle_s: float = IDLE_PING_S) -> sa.Engine:
    """SQLAlchemy's pessimistic disconnect handling (`pool_pre_ping`) for connections that sat
    idle: one that fails its ping is replaced before the read uses it (after a database
    restart); a connection lost while in use fails that one request, and the pool then
    replaces every connection it held."""

    @sa.event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"idle connection lost: {exc}") from exc

    return engine


def command_threads(store: Store, options: Options) -> int:
    if options.command_threads > 0:
        return options.command_threads
    return store.pool_size + store.pool_max_overflow if store.backend == "postgres" else 1


def _pool(store: Store) -> dict[str, int]:
    """The reads' pool within the store's budget (SQLite keeps SQLAlchemy's own): up to
    S + O connections, each kept open once opened (a pool of S with O overflow would open and
    close an overflow connection per read whenever more than S reads run at once)."""
    if store.backend != "postgres":
        return {}
    return {"pool_size": store.pool_size + store.pool_max_overflow, "max_overflow": 0}
