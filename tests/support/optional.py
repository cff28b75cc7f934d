"""What some tests need and a developer's machine may lack (PostgreSQL, Chromium, network
namespaces, livekit-agents): skipped there with the reason, failed in CI (where a skip would
hide that the tests never ran)."""

from __future__ import annotations

import importlib.util
import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(what: str, reason: str | None) -> None:
    """Go on if `reason` is None; otherwise skip saying why, or fail under CI=true."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {what} must run: {reason}")
    pytest.skip(reason)


AGENTS_MISSING = "livekit-agents is not installed: pip install -e '.[dev,agents]'"


def livekit_agents_missing() -> bool:
    if importlib.util.find_spec("livekit.agents") is not None:
        return False
    if os.environ.get("CLARA_ES_REQUIRE_AGENTS"):
        raise ImportError("livekit-agents is required here: pip install -e '.[dev,agents]'")
    return True
