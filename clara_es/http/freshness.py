"""Read-your-writes for the HTTP reads: a GET after a command of the same caller shows at least
the version that command answered, though the views are kept by a runner that may lag.

The version a read must show comes from `X-Clara-Min-Version` / `?min_version=` (any process),
or else from what this process last answered the same caller for that session (automatic). One
session's UI state below it is read from the session's own stream; its history waits briefly for
the history view (then 503 with Retry-After); the lists and the stats wait briefly for the views
to reach the log's head when one of the caller's recent writes is not in them yet. Every answer
read from the views says how far behind the log they are (`X-Clara-Views-Behind`), as measured
at most `Options.views_behind_ttl_s` ago.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

import sqlalchemy as sa
from fastapi import Response

from clara_es.http.auth import Principal
from clara_es.http.problems import ApiProblem
from projections import queries
from projections.history import history_table
from projections.ui_state import ui_state_table

VIEWS_BEHIND = "X-Clara-Views-Behind"
MIN_VERSION = "X-Clara-Min-Version"
SOURCE = "X-Clara-Source"

CallerKey = tuple[str, str, str | None]


def key_of(caller: Principal) -> CallerKey:
    return (caller.role.value, caller.identity, caller.room)


class Written:
    """The last version answered to each caller per session, in this process (bounded)."""

    def __init__(self, callers: int = 10_000, sessions_per_caller: int = 32) -> None:
        self.callers = callers
        self.per_caller = sessions_per_caller
        self._seen: OrderedDict[CallerKey, OrderedDict[UUID, int]] = OrderedDict()
        self._lock = threading.Lock()

    def wrote(self, caller: Principal, session_id: UUID, version: int) -> None:
        key = key_of(caller)
        with self._lock:
            sessions = self._seen.pop(key, None) or OrderedDict()
            self._seen[key] = sessions
            sessions[session_id] = max(version, sessions.pop(session_id, 0))
            while len(sessions) > self.per_caller:
                sessions.popitem(last=False)
            while len(self._seen) > self.callers:
                self._seen.popitem(last=False)

    def version(self, caller: Principal, session_id: UUID) -> int:
        with self._lock:
            return self._seen.get(key_of(caller), {}).get(session_id, 0)

    def sessions(self, caller: Principal) -> dict[UUID, int]:
        with self._lock:
            return dict(self._seen.get(key_of(caller), {}))


class Freshness:
    """Waits for the views (bounded by `wait_s`) and measures how far behind they are."""

    def __init__(
        self,
        views: sa.Engine,
        head: Callable[[], int],
        wait_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        behind_ttl_s: float = 0.0,
    ) -> None:
        self.views = views
        self.head = head
        self.wait_s = wait_s
        self.behind_ttl_s = behind_ttl_s
        self.written = Written()
        self._sleep = sleep
        self._monotonic = monotonic
        self._measured: tuple[float, int] | None = None  # (when, events behind)
        self._measuring = threading.Lock()

    def behind(self) -> int:
        """Events the slowest view is behind the event log."""
        head = self.head()
        behind = max((head - p for p in queries.positions(self.views).values()), default=0)
        self._measured = (self._monotonic(), behind)
        return behind

    def recently_behind(self) -> int:
        """`behind`, measured at most `behind_ttl_s` ago: the header every read carries costs
        two queries, which a busy process makes once per `behind_ttl_s`, not once per read."""
        measured = self._measured
        if measured is not None and self._monotonic() - measured[0] < self.behind_ttl_s:
            return measured[1]
        if measured is not None and not self._measuring.acquire(blocking=False):
            return measured[1]  # another read is measuring it right now
        try:
            return self.behind()
        finally:
            if measured is not None:
                self._measuring.release()

    def say(self, response: Response, behind: int | None = None) -> None:
        response.headers[VIEWS_BEHIND] = str(self.recently_behind() if behind is None else behind)

    def needed(self, caller: Principal, session_id: UUID, asked: int | None) -> int:
        return max(asked or 0, self.written.version(caller, session_id))

    def _until(self, reached: Callable[[], bool]) -> bool:
        """Poll `reached` until it holds or `wait_s` passes (starting at 5 ms, up to 100 ms)."""
        deadline = self._monotonic() + self.wait_s
        pause = 0.005
        while not reached():
            if self._monotonic() >= deadline:
                return False
            self._sleep(pause)
            pause = min(pause * 2, 0.1)
        return True

    def history_reaches(self, session_id: UUID, version: int) -> None:
        """Wait for the history view to hold `version` of the session, else 503."""
        if version <= 0:
            return
        h = history_table
        stmt = sa.select(sa.func.max(h.c.version)).where(h.c.session_id == str(session_id))

        def reached() -> bool:
            with queries.reading(self.views) as conn:
                return (conn.execute(stmt).scalar() or 0) >= version

        if not self._until(reached):
            raise ApiProblem(
                503, f"the history view has not reached version {version} of session "
                f"{session_id} within {self.wait_s:g} s (the views are {self.behind()} events "
                "behind the event log); try again",
                headers={"Retry-After": "1", VIEWS_BEHIND: str(self.behind())},
            )

    def caller_settled(self, caller: Principal) -> None:
        """Before a list or the stats: when one of the caller's recent writes is not in the
        views yet, wait (bounded) for them to reach the log's head."""
        written = self.written.sessions(caller)
        if not written:
            return
        u = ui_state_table
        stmt = sa.select(u.c.session_id, u.c.version).where(
            u.c.session_id.in_([str(s) for s in written]))
        with queries.reading(self.views) as conn:
            shown = {UUID(str(s)): v for s, v in conn.execute(stmt).all()}
        if all(shown.get(s, 0) >= v for s, v in written.items()):
            return
        head = self.head()
        self._until(lambda: min(queries.positions(self.views).values(), default=head) >= head)
