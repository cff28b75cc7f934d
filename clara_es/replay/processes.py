"""Work the simulator runs beside itself: in forked processes on Linux (they start with
everything already imported), one after the other elsewhere (macOS's system libraries are
not fork-safe, and CPython no longer forks there by default). The results are the same either
way; only the time differs.

Fork only from a thread that holds no lock another thread may need: the simulator forks from
its caller's thread, and the CLI runs no other thread meanwhile (no live spinner)."""

from __future__ import annotations

import multiprocessing as mp
import sys
from multiprocessing.context import BaseContext

FORKS = sys.platform == "linux"


def forking() -> BaseContext | None:
    """The fork context where the simulator forks, else None (run in this process)."""
    return mp.get_context("fork") if FORKS else None
