"""The simulator's temporary stores: in memory only where they fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clara_es.replay.scratch import scratch_store

SHM = Path("/dev/shm")


@pytest.mark.skipif(not SHM.is_dir(), reason="this system has no /dev/shm")
def test_a_store_goes_to_memory_only_when_it_fits_twice() -> None:
    free = shutil.disk_usage(SHM).free
    with scratch_store("small", expected_bytes=1000) as small:
        assert small.sqlite_path is not None and SHM in small.sqlite_path.parents
    with scratch_store("large", expected_bytes=free) as large:
        assert large.sqlite_path is not None and SHM not in large.sqlite_path.parents
    assert not large.sqlite_path.parent.exists()  # removed afterwards
