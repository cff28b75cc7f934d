"""Temporary SQLite stores for the simulator, in memory (tmpfs) where the system has one with
room to spare: the same SQLite store, without a disk flush per commit. A container's tmpfs is
often small (Docker's /dev/shm: 64 MB), so a store expected not to fit twice goes to disk."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clara_es.adapters.store import Store

# What a simulated session's store takes, events and views (about 43 kB measured), with room.
SESSION_BYTES = 100_000


@contextmanager
def scratch_store(name: str, expected_bytes: int) -> Iterator[Store]:
    """A new SQLite store in a temporary folder, removed afterwards."""
    folder = _in_memory(expected_bytes)
    with tempfile.TemporaryDirectory(prefix=f"clara-es-{name}-", dir=folder) as scratch:
        yield Store.sqlite(Path(scratch) / f"{name}.db")


def _in_memory(expected_bytes: int) -> str | None:
    """/dev/shm if it is there, writable and has room for twice `expected_bytes`; None: the
    default temporary folder."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        return None
    return str(shm) if shutil.disk_usage(shm).free > 2 * expected_bytes else None
