"""What every command is: validated once, recorded with who sent it, when and under which key."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from clara_es.domain.errors import DomainError
from clara_es.domain.signal import Actor, Signal

if TYPE_CHECKING:
    from clara_es.domain.session import VoiceSession



class InvalidCommand(DomainError):
    """The command's arguments are not valid: nothing was appended."""


class UnknownSignal(DomainError):
    """A recorded signal that no command of the catalogue can re-run."""


class IdempotencyConflict(InvalidCommand):
    """An idempotency key already used for a different command: nothing was appended."""


# Names and free text end up in views and logs: one line, bounded.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
Attempt = Annotated[int, Field(ge=1, le=100, description="the reconnect attempt, from 1")]
Key = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]

_DATE_AND_TIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d")


def written_time(value: Any) -> Any:
    """A time arrives as an RFC 3339 date-time (what the OpenAPI schema says), never as a number
    (pydantic would read 0.5 as a Unix time) nor as a bare date; datetime objects pass."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not _DATE_AND_TIME.match(value)
    ):
        raise ValueError("expected a date and time such as 2026-01-01T14:03:07Z")
    return value


# A time with its zone (every command's occurred_at), and one where no zone means UTC (filters).
Instant = Annotated[AwareDatetime, BeforeValidator(written_time)]
LocalInstant = Annotated[datetime, BeforeValidator(written_time)]


class Command(BaseModel):
    """One signal to one session. `actor` and `command_id` say who sent it and as what.

    `occurred_at` is when the fact happened on the reporter's clock (the service's time when
    absent); `idempotency_key` makes a repeat answer the first answer and append nothing.
    Neither is one of the command's arguments (`args`): they are recorded in the cause.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    route: ClassVar[str | None] = None
    reporter: ClassVar[Actor] = Actor.CLIENT
    # the agent's own reports: only an agent may send them (HTTP refuses other tokens)
    agent_only: ClassVar[bool] = False
    META: ClassVar[frozenset[str]] = frozenset(
        {"actor", "command_id", "occurred_at", "idempotency_key"}
    )
    IN_BODY: ClassVar[frozenset[str]] = frozenset({"occurred_at"})  # of META, sent in a body

    actor: Actor | None = Field(None, description="who reports it; the route's role by default")
    command_id: str | None = Field(
        None, description="the id of the timer or request that sent it (kept across retries)"
    )
    occurred_at: Instant | None = Field(
        None, description="when it happened, on the reporter's clock (default: when received)"
    )
    idempotency_key: Key | None = Field(
        None, description="a repeat with the same key and body appends nothing"
    )

    @classmethod
    def build(cls, **fields: Any) -> Any:
        """The command, or InvalidCommand naming what is wrong (for callers without pydantic)."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise InvalidCommand(_first_error(cls.name, exc)) from None

    @property
    def by(self) -> Actor:
        return self.actor or self.reporter

    def args(self) -> dict[str, Any]:
        """The arguments recorded in the cause of every event the command leads to."""
        return self.model_dump(mode="json", exclude=set(self.META))

    def digest(self) -> str:
        """What was sent under an idempotency key: the same key must come with the same."""
        sent = self.model_dump(mode="json", exclude={"actor", "command_id", "idempotency_key"})
        text = json.dumps([self.name, sent], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def decide(self, session: VoiceSession, signal: Signal) -> None:
        raise NotImplementedError



def _first_error(name: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or name
    return f"{name}: {where}: {error['msg']}"
