"""One long-running process per SQLite file: an OS lock on a file beside the store.

SQLite is the embedded single-node store; a second `run` or `serve` on the same file would
share nothing with the first but the file (each keeps its own timers' leases and views), so
it is refused at start. The OS drops the lock when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class StoreInUse(RuntimeError):
    """Another process holds the store."""


def hold(store_file: Path) -> IO[str]:
    """Lock `<store_file>.lock` for this process (keep the returned file open)."""
    path = store_file.with_name(store_file.name + ".lock")
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreInUse(
            f"{store_file} is in use by {holder}: SQLite runs one `clara-es run` or `serve` "
            "per file; stop that one first, or use PostgreSQL (CLARA_ES_DATABASE_URL) to run "
            "several processes"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"clara-es pid {os.getpid()}\n")
    handle.flush()
    return handle
