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

    `at` is when the fact happened (the reporter's `occurred_at`, corrected by its clock
    offset): decisions use it. `recorded_at` is the service's time, kept only where it differs.
    A reporter's `idempotency_key` is kept with the `digest` of what it sent under that key.
    """

    name: str
    actor: Actor
    at: datetime
    args: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    read_version: int | None = None
    lost_reads: tuple[int, ...] = ()
    recorded_at: datetime | None = None
    clock_offset_ms: int | None = None
    idempotency_key: str | None = None
    digest: str | None = None

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
        if self.recorded_at is not None and self.recorded_at != self.at:
            cause["recorded_at"] = self.recorded_at.isoformat()
        if self.clock_offset_ms:
            cause["clock_offset_ms"] = self.clock_offset_ms
        if self.idempotency_key is not None:
            cause["idempotency_key"] = self.idempotency_key
            cause["digest"] = self.digest
        return {"timestamp": self.at, "actor": str(self.actor), "cause": cause}


def signal_of(cause: dict[str, Any], actor: Actor, at: datetime) -> Signal:
    """The signal a stored event's cause records (for re-running it)."""
    recorded_at = cause.get("recorded_at")
    return Signal(
        name=cause["name"], actor=actor, at=at, args=cause.get("args", {}), id=cause["id"],
        read_version=cause.get("read_version"), lost_reads=tuple(cause.get("lost_reads", ())),
        recorded_at=datetime.fromisoformat(recorded_at) if recorded_at else None,
        clock_offset_ms=cause.get("clock_offset_ms"),
        idempotency_key=cause.get("idempotency_key"), digest=cause.get("digest"),
    )
