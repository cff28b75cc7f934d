"""What a voice session knows about itself: its states, and the attributes its events set.

Class-level defaults are deliberate: streams written before an attribute existed read back
unchanged.
"""

from __future__ import annotations

import copy
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

from clara_es.domain.policy import BackoffPolicy


class ConnectionState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    ENDED = "ended"


class Quality(StrEnum):
    """LiveKit's rtc.ConnectionQuality, by name."""

    EXCELLENT = "excellent"
    GOOD = "good"
    POOR = "poor"
    LOST = "lost"
    UNKNOWN = "unknown"


class AgentConnection(StrEnum):
    """The agent's own connection to the room: its outages are not the user's."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


BAD_QUALITY = frozenset({Quality.POOR, Quality.LOST})
GOOD_QUALITY = frozenset({Quality.GOOD, Quality.EXCELLENT})
FINAL_STATES = frozenset({ConnectionState.FAILED, ConnectionState.ENDED})
ATTEMPTS_EXHAUSTED = "max reconnect attempts reached"
_CONTAINERS = (list, dict, set)


class SessionState:
    """The attributes the events set (events.py), read by the rules (rules.py and after)."""

    room: str
    participant: str
    policy: dict[str, Any]
    state: ConnectionState
    quality: Quality
    attempt: int
    attempt_in_flight: bool
    next_retry_at: datetime | None
    outage_started_at: datetime | None

    agent_connection: AgentConnection = AgentConnection.CONNECTED
    poor_confirmed: bool = False
    poor_since: datetime | None = None  # when the current poor-or-lost spell began
    last_activity_at: datetime | None = None  # the last fact a client, agent or LiveKit reported
    webhook_ids: tuple[str, ...] = ()
    WEBHOOK_IDS_KEPT = 256

    # (idempotency key, digest of what was sent, the version its decision ended at)
    request_keys: tuple[tuple[str, str | None, int], ...] = ()
    REQUEST_KEYS_KEPT = 1000

    reconnection_attempts: int = 0  # pipeline restarts in the current poor-quality episode
    restart_request: str | None = None  # id of the restart that has no outcome yet
    restart_claimed_by: str | None = None  # the agent performing that restart
    cleanup_request: str | None = None
    cleanup_outcome: str | None = None  # "cleaned", "failed" or "skipped"

    if TYPE_CHECKING:  # provided by eventsourcing's Aggregate
        id: UUID
        version: int
        created_on: datetime
        modified_on: datetime

        def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None: ...

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        """The copy a command decides on (the repository copies its cached session for each
        command, so one that fails halfway leaves the cache as it was). The attributes are
        immutable values (strings, enums, numbers, datetimes, tuples), shared; the containers
        (the policy, the pending events) are copied, and what they hold is never changed in
        place (a policy is replaced whole, events are frozen). A generic deepcopy walks every
        value: several times the cost of a command's decision.
        """
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update({
            name: copy.copy(value) if isinstance(value, _CONTAINERS) else value
            for name, value in self.__dict__.items()
        })
        return copied

    def leave_schedule(self, state: ConnectionState) -> None:
        """The session goes to `state` out of any schedule: no attempt in flight, none due."""
        self.state = state
        self.attempt_in_flight = False
        self.next_retry_at = None

    def remember_request(self, key: str, digest: str | None, version: int) -> None:
        kept = [entry for entry in self.request_keys if entry[0] != key]
        self.request_keys = (*kept, (key, digest, version))[-self.REQUEST_KEYS_KEPT:]

    def answered(self, key: str) -> tuple[str | None, int] | None:
        """The digest and end version of the decision made under `key`, if one was recorded."""
        for known, digest, version in reversed(self.request_keys):
            if known == key:
                return digest, version
        return None

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy.model_validate(self.policy)

    @property
    def max_attempts(self) -> int:
        return int(self.policy["max_attempts"])

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def resuming(self) -> bool:
        """The room resumes on its own: reconnecting, and no attempt of ours is scheduled."""
        return self.state == ConnectionState.RECONNECTING and self.attempt == 0
