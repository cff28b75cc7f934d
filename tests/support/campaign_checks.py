"""What the fault campaigns check once the faults are over: nothing acknowledged was lost, and
the views equal their rebuild."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any
from uuid import UUID

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions

Cli = Callable[..., subprocess.CompletedProcess[str]]


def lost(store: Store, acknowledged: dict[str, int]) -> int:
    """Sessions whose stream is shorter than a version a command was acknowledged at."""
    app = VoiceSessions(store.eventsourcing_env())
    try:
        return sum(len(app.events_after(UUID(sid))) < version
                   for sid, version in acknowledged.items())
    finally:
        app.close()


def views_equal_rebuild(clara_es: Cli) -> bool:
    """`sessions` before and after `projections rebuild`, through the CLI `clara_es(*args)`."""
    before = clara_es("sessions", "--json", "--limit", "100000")
    rebuilt = clara_es("projections", "rebuild", "--json")
    after = clara_es("sessions", "--json", "--limit", "100000")
    if before.returncode or rebuilt.returncode or after.returncode:
        return False

    def rows(text: str) -> list[Any]:
        return sorted(json.loads(text), key=lambda r: r["session_id"])

    return rows(before.stdout) == rows(after.stdout)
