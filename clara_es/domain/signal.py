"""Who and what caused a fact: every event in a session stream carries one of these."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Actor(StrEnum):
    CLIENT = "client"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Signal:
    """A command or a timer, as the session received it.

    `id` stays the same when a command is retried after a concurrency conflict, while
    `read_version` changes; `lost_reads` keeps the versions it read and lost the race on, so
    the history shows that the command decided more than once. A timer that fired is
    recorded as the command it sends, with actor `system` and the timer's id as `id`.
    """

    name: str
    actor: Actor
    at: datetime
    args: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    read_version: int | None = None
    lost_reads: tuple[int, ...] = ()

    def facts(self) -> dict[str, Any]:
        """The attributes every event records: when, who, and the cause."""
        cause: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "args": self.args,
            "read_version": self.read_version,
        }
        if self.lost_reads:
            cause["lost_reads"] = list(self.lost_reads)
        return {"timestamp": self.at, "actor": str(self.actor), "cause": cause}
