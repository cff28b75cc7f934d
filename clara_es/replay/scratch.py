"""Temporary SQLite stores for the simulator, in memory (tmpfs) where the system has one: the
same SQLite store, without a disk flush per commit."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clara_es.adapters.store import Store


@contextmanager
def scratch_store(name: str) -> Iterator[Store]:
    """A new SQLite store in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"clara-es-{name}-", dir=_in_memory()) as folder:
        yield Store.sqlite(Path(folder) / f"{name}.db")


def _in_memory() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
