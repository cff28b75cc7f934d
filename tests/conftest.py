"""What every folder shares: the virtual clock, and small PostgreSQL pools.

tests/unit         the domain and the application on eventsourcing's in-memory stores
tests/integration  the same code on a real SQLite file and a real PostgreSQL schema
tests/e2e          real processes: signals, SIGKILL, `serve` on a port, the browser
Helpers and fixtures shared between files live in tests/support.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from clara_es.domain import VirtualClock

# eventsourcing opens POSTGRES_POOL_SIZE connections per application up front (5 by default,
# 10 more on demand) and a test holds several applications at once; keep a run well under the
# server's max_connections even beside another run. Subprocesses inherit the setting.
os.environ.setdefault("POSTGRES_POOL_SIZE", "1")
os.environ.setdefault("POSTGRES_MAX_OVERFLOW", "3")

TESTS = Path(__file__).parent
FOLDERS = ("unit", "integration", "e2e")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(autouse=True)
def _logging_as_pytest_set_it() -> Iterator[None]:
    """Commands run in process configure the process's logging, as a real process would
    (structlog, a stderr handler, the level); the next test gets pytest's setup back."""
    root = logging.getLogger()

    def ours(handler: logging.Handler) -> bool:
        return not type(handler).__module__.startswith("_pytest")

    handlers, level = [h for h in root.handlers if ours(h)], root.level
    yield
    for handler in [h for h in root.handlers if ours(h) and h not in handlers]:
        root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its folder (`-m "not e2e"`) and run the fast folders first.

    A test file at the top of tests/ (not yet placed in a folder) still runs, after unit/.
    """

    def folder(item: pytest.Item) -> str:
        return item.path.relative_to(TESTS).parts[0]

    for item in items:
        if folder(item) in FOLDERS:
            item.add_marker(folder(item))
    items.sort(key=lambda item: FOLDERS.index(folder(item)) if folder(item) in FOLDERS else 1)
