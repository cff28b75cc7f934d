"""The reconnect backoff policy: attempt n waits base * factor**(n-1), capped, maybe jittered."""

from __future__ import annotations

import hashlib
import random

from pydantic import BaseModel, ConfigDict, Field, model_validator

LONGEST_DELAY_MS = 24 * 3600 * 1000


class BackoffPolicy(BaseModel):
    """Defaults follow the spec: 1 s, 2 s, 4 s, 8 s, 16 s, then the session fails.

    Every delay of the schedule, jitter included, must be at most 24 hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_delay_ms: int = Field(
        1000, ge=0, description="delay before the first attempt (every delay: at most 24 hours)",
        # Enforced with the whole schedule below, with one message for every bound's breach.
        json_schema_extra={"maximum": LONGEST_DELAY_MS},
    )
    factor: float = Field(
        2.0, ge=1.0, allow_inf_nan=False, description="growth of the delay per attempt"
    )
    max_attempts: int = Field(5, ge=1, le=100, description="attempts before the session fails")
    cap_ms: int | None = Field(
        None, ge=0, description="no delay is longer than this (nor than 24 hours)"
    )
    jitter: float = Field(0.0, ge=0.0, le=1.0, description="fraction of the delay randomised")
    seed: int = Field(0, description="seed of the jitter's random source")

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> BackoffPolicy:
        if self.cap_ms is not None and self.cap_ms < self.base_delay_ms:
            raise ValueError(
                f"cap_ms ({self.cap_ms}) must not be below base_delay_ms ({self.base_delay_ms})"
            )
        if self._capped(self.max_attempts) * (1 + self.jitter) > LONGEST_DELAY_MS:
            raise ValueError("every delay must be at most 24 hours")
        return self

    def delay_ms(self, attempt: int, key: str = "") -> int:
        """Delay before `attempt` (1-based). `key` (the session id) makes jitter per session.

        Jitter is drawn from a random source seeded by (seed, key, attempt), so the same
        session replayed on the same policy waits exactly as long as it did the first time.
        """
        if not 1 <= attempt <= self.max_attempts:
            raise ValueError(f"attempt must be between 1 and {self.max_attempts}, got {attempt}")
        delay = self._capped(attempt)
        if self.jitter:
            digest = hashlib.sha256(f"{self.seed}/{key}/{attempt}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            delay *= 1 - self.jitter + 2 * self.jitter * rng.random()
        return round(delay)

    def _capped(self, attempt: int) -> float:
        try:
            delay = self.base_delay_ms * self.factor ** (attempt - 1)
        except OverflowError:
            delay = float("inf")
        return delay if self.cap_ms is None else min(delay, self.cap_ms)

    def schedule_ms(self, key: str = "") -> list[int]:
        """Every delay of one outage, first attempt to last."""
        return [self.delay_ms(n, key) for n in range(1, self.max_attempts + 1)]
