"""What every view is: a name, its tables, and how one stored event changes its rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa

from clara_es.domain import VoiceSession
from projections.sql import Sql


@dataclass(frozen=True)
class Change:
    """One stored event as the views see it: its type by class name, and the session after it.

    `session` is None only when the event could not be applied to the aggregate (an event
    type this code does not know); views then record what they can, or nothing.
    """

    notification_id: int
    session_id: UUID
    version: int
    type: str
    occurred_at: datetime
    actor: str
    cause: dict[str, Any]
    details: dict[str, Any]
    session: VoiceSession | None


class View(ABC):
    name: ClassVar[str]
    tables: ClassVar[tuple[sa.Table, ...]]
    tracking: ClassVar[sa.Table]

    @abstractmethod
    def apply(self, db: Sql, change: Change) -> None:
        """Change the view's rows for one event (inside the tracking transaction)."""

    def reset(self, db: Sql) -> None:
        for table in self.tables:
            db.run(_delete_all(table))


@cache
def _delete_all(table: sa.Table) -> sa.Delete:
    return sa.delete(table)
