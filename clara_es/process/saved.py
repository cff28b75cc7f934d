"""The facts this process saved, for the catch-up to take without reading them back.

The process manager follows the log by notification id. Most of what it applies in `run`,
and all of it in the simulator, was saved by the application it shares a process with: those
events are kept here as they are stored (`VoiceSessions.on_saved`), and a catch-up takes them
only when they continue its position exactly (first id = position + 1, no gap after), which
no append of another process can slip between. Anything else (another process's append, a gap,
saves that arrived out of order from two threads, more than the buffer holds) is read from
the store as before.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from clara_es.application import VoiceSessions


class SavedFacts:
    def __init__(self, sessions: VoiceSessions, keep: int) -> None:
        self.facts: deque[tuple[int, Any]] = deque(maxlen=keep)
        self.lock = threading.Lock()
        self.close = sessions.on_saved(self._saved)

    def _saved(self, recordings: list[Any]) -> None:
        with self.lock:
            self.facts.extend((r.notification.id, r.domain_event) for r in recordings)

    def after(self, position: int, limit: int) -> tuple[list[int], list[Any], bool]:
        """The saved facts that continue `position` without a gap (at most `limit`): their
        ids and events, and whether more were saved after them (past a gap or the limit);
        the facts at or before `position` are dropped."""
        ids: list[int] = []
        events: list[Any] = []
        with self.lock:
            facts = self.facts
            while facts and facts[0][0] <= position:
                facts.popleft()
            expected = position + 1
            for notification_id, event in facts:
                if notification_id != expected or len(ids) == limit:
                    break
                ids.append(notification_id)
                events.append(event)
                expected += 1
            more = len(facts) > len(ids)
        return ids, events, more
