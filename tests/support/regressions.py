"""Bugs planted on purpose, to show that a check can fail."""

from __future__ import annotations

import pytest

from clara_es.domain import BackoffPolicy, VoiceSession


def one_attempt_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted regression: the session follows a copy of its policy with one more attempt."""

    def max_attempts(self: VoiceSession) -> int:
        return int(self.policy["max_attempts"]) + 1

    def backoff(self: VoiceSession) -> BackoffPolicy:
        return BackoffPolicy.model_validate({**self.policy, "max_attempts": max_attempts(self)})

    monkeypatch.setattr(VoiceSession, "max_attempts", property(max_attempts))
    monkeypatch.setattr(VoiceSession, "backoff", property(backoff))
