"""What every folder shares: the virtual clock, and small PostgreSQL pools.

tests/unit         the domain and the application on eventsourcing's in-memory stores
tests/integration  the same code on a real SQLite file and a real PostgreSQL schema
tests/e2e          real processes: signals, SIGKILL, `serve` on a port, the browser
Helpers and fixtures shared between files live in tests/support.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clara_es.domain import VirtualClock
from tests.support import process_logging

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


@pytest.fixture(scope="session")
def _logging_at_start() -> process_logging.Snapshot:
    return process_logging.snapshot()


@pytest.fixture(autouse=True)
def _logging_as_at_start(_logging_at_start: process_logging.Snapshot) -> Iterator[None]:
    """Each test ends with the logging the session started with, whatever a command run in
    process (in the test or in a module's fixture) configured."""
    yield
    process_logging.restore(_logging_at_start)


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
