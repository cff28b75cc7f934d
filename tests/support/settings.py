"""Counting how often Settings is built (the composition root must read it once)."""

from __future__ import annotations

from typing import Any

import pytest

from clara_es.config import Settings


def count_settings(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Every Settings built from now on (until the monkeypatch is undone)."""
    built: list[Settings] = []
    original = Settings.__init__

    def counting(self: Settings, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(Settings, "__init__", counting)
    return built
