"""The client's durable outbox: every fact it reported, in order, in a SQLite file.

A fact is written (and committed) before anything is sent, so a client killed at any moment
finds on restart every fact it had shown the user. A fact is delivered once the service has
answered for it; the file keeps delivered facts too, so the client rebuilds its local state
from them after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    participant TEXT NOT NULL,
    policy TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    occurred_at TEXT NOT NULL,
    delivered_status INTEGER
);
CREATE INDEX IF NOT EXISTS facts_pending ON facts (session_id, seq)
    WHERE delivered_status IS NULL;
"""


@dataclass(frozen=True)
class Fact:
    seq: int
    type: str  # the command's route name
    body: dict[str, Any]  # the route's body fields, without occurred_at
    idempotency_key: str
    occurred_at: datetime
    delivered_status: int | None

    def signal(self) -> dict[str, Any]:
        """As the batch endpoint takes it."""
        return {"type": self.type, **self.body, "occurred_at": self.occurred_at.isoformat(),
                "idempotency_key": self.idempotency_key}


@dataclass(frozen=True)
class StartedSession:
    session_id: UUID
    room: str
    participant: str
    policy: dict[str, Any]
    started_at: datetime


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # One connection, shared by the client and its background flusher under a lock.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed fact survives a power cut
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_session(self, session: StartedSession) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?)",
                (str(session.session_id), session.room, session.participant,
                 json.dumps(session.policy), session.started_at.isoformat()),
            )

    def latest_session(self) -> StartedSession | None:
        with self._lock:
            row = self._db.execute(
                "SELECT session_id, room, participant, policy, started_at FROM sessions "
                "ORDER BY started_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return StartedSession(UUID(row[0]), row[1], row[2], json.loads(row[3]),
                              datetime.fromisoformat(row[4]))

    def append(
        self, session_id: UUID, type_: str, body: dict[str, Any], key: str, occurred_at: datetime
    ) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO facts (session_id, type, body, idempotency_key, occurred_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (str(session_id), type_, json.dumps(body), key, occurred_at.isoformat()),
            )

    def facts(self, session_id: UUID, pending_only: bool = False, limit: int = -1) -> list[Fact]:
        where = " AND delivered_status IS NULL" if pending_only else ""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, type, body, idempotency_key, occurred_at, delivered_status "
                f"FROM facts WHERE session_id = ?{where} ORDER BY seq LIMIT ?",
                (str(session_id), limit),
            ).fetchall()
        return [Fact(r[0], r[1], json.loads(r[2]), r[3], datetime.fromisoformat(r[4]), r[5])
                for r in rows]

    def delivered(self, answers: list[tuple[int, int]]) -> None:
        """(seq, the service's status for it): the service has answered for these facts."""
        with self._lock, self._db:
            self._db.executemany(
                "UPDATE facts SET delivered_status = ? WHERE seq = ?",
                [(status, seq) for seq, status in answers],
            )
