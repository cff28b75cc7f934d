"""Appends made by any process, heard by this one: one follower of the log per process
(`LogListener`: a LISTEN connection on PostgreSQL; `LogTail`: a short poll of the log on
SQLite, which has no notifications).

eventsourcing's PostgreSQL recorder sends `NOTIFY <its events table>` in the same transaction
as every append, so the notification arrives only once the events are committed, whichever
process appended them. On each one the listener reads the events after the last notification
it saw, once for the whole process, and hands them to `wake` (which decodes those it needs:
the live feeds send them without reading the store again; in `serve` the views' runner takes
the same rows, see projections/heard.py).
The recorder's table lock makes commit order the log's order, so nothing committed is skipped.

Each time the connection starts listening (at start, and again after it was lost, when the
notifications sent meanwhile are gone) `wake_all` is called: every feed re-reads its stream
once, so nothing appended before the LISTEN took effect is missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Self
from uuid import UUID

from eventsourcing.persistence import Notification
from psycopg import sql

from clara_es.adapters.store import Store

log = logging.getLogger(__name__)

# Rows read per query after a notification (a burst larger than this is read in turns).
READ = 5000


class _Follower:
    """One thread following the log for the process: `_follow` runs until stopped or until
    its source fails; then, after `retry_s`, it starts again (and `wake_all` is called again
    by `_follow`: what was appended meanwhile may have been missed)."""

    thread_name = "log-follower"
    lost_event = "follow_lost"

    def __init__(
        self,
        wake: Callable[[list[Notification]], None],
        wake_all: Callable[[], None],
        retry_s: float,
    ) -> None:
        self.wake = wake
        self.wake_all = wake_all
        self.retry_s = retry_s
        self.position = 0
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:
                self.listening.clear()
                if self._stop.is_set():
                    return
                log.warning("event=%s %serror=%r; following again in %g s", self.lost_event,
                            self._where(), str(exc).splitlines()[0] if str(exc) else exc,
                            self.retry_s)
                self._stop.wait(self.retry_s)
        self.listening.clear()

    def _follow(self) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        return ""


class LogListener(_Follower):
    """One thread and one PostgreSQL connection: LISTEN on the events' channel, and wake the
    sessions that have new events."""

    thread_name = "log-listener"
    lost_event = "listen_lost"

    def __init__(
        self,
        store: Store,
        recorder: Any,
        wake: Callable[[list[Notification]], None],
        wake_all: Callable[[], None],
        *,
        retry_s: float = 1.0,
        tick_s: float = 0.25,
    ) -> None:
        super().__init__(wake, wake_all, retry_s)
        self.store = store
        self.channel: str = recorder.channel_name
        self._select = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {}.{} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(recorder.datastore.schema),
                 sql.Identifier(recorder.events_table_name))
        self._head = sql.SQL("SELECT max(notification_id) FROM {}.{}").format(
            sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name))
        self.tick_s = tick_s
        self.heard = 0  # notifications received (for tests and metrics)
        self.backend_pid: int | None = None

    def _where(self) -> str:
        return f"channel={self.channel} "

    def _follow(self) -> None:
        with self.store.connect_postgres() as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            head = conn.execute(self._head).fetchone()
            self.position = int(head[0] or 0) if head else 0
            self.backend_pid = conn.info.backend_pid
            self.listening.set()
            self.wake_all()  # what was appended before LISTEN took effect
            self._listen(conn)

    def _listen(self, conn: Any) -> None:
        while not self._stop.is_set():
            heard = False
            for _ in conn.notifies(timeout=self.tick_s, stop_after=1):
                heard = True
            if not heard:
                continue
            # What is queued already is covered by the read below; what comes after it
            # wakes the next read.
            for _ in conn.notifies(timeout=0):
                pass
            self.heard += 1
            self._read(conn)

    def _read(self, conn: Any) -> None:
        while True:
            rows = conn.execute(self._select, (self.position, READ)).fetchall()
            if not rows:
                return
            self.position = int(rows[-1][0])
            self.wake([
                Notification(id=int(row[0]), originator_id=_uuid(row[1]),
                             originator_version=row[2], topic=row[3], state=bytes(row[4]))
                for row in rows
            ])
            if len(rows) < READ:
                return


class LogTail(_Follower):
    """SQLite's follower of the log: one thread reading the notifications after the last one
    it read, every `interval_s`, and handing them to `wake` (as `LogListener` does). SQLite
    has one writer at a time, so the log's positions are committed in order: nothing is
    skipped. `wake_all` is called once it starts (what was appended before)."""

    thread_name = "log-tail"
    lost_event = "tail_lost"

    def __init__(
        self,
        recorder: Any,
        wake: Callable[[list[Notification]], None],
        wake_all: Callable[[], None],
        *,
        interval_s: float = 0.025,
        retry_s: float = 1.0,
    ) -> None:
        super().__init__(wake, wake_all, retry_s)
        self.recorder = recorder
        self.interval_s = interval_s

    def _follow(self) -> None:
        self.position = int(self.recorder.max_notification_id() or 0)
        self.listening.set()
        self.wake_all()
        while not self._stop.wait(self.interval_s):
            self._read()

    def _read(self) -> None:
        while True:
            rows = self.recorder.select_notifications(start=self.position + 1, limit=READ)
            if not rows:
                return
            self.position = rows[-1].id
            self.wake(list(rows))
            if len(rows) < READ:
                return


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
