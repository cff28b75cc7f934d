"""Test modules that need livekit-agents: skipped without it, or failed under
CLARA_ES_REQUIRE_AGENTS (where a skip would hide that the tests never ran)."""

from __future__ import annotations

import importlib.util
import os

AGENTS_MISSING = "livekit-agents is not installed: pip install -e '.[dev,agents]'"


def livekit_agents_missing() -> bool:
    if importlib.util.find_spec("livekit.agents") is not None:
        return False
    if os.environ.get("CLARA_ES_REQUIRE_AGENTS"):
        raise ImportError("livekit-agents is required here: pip install -e '.[dev,agents]'")
    return True
