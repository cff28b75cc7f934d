"""SQLite is the single-node store: a second long-running process on one file is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def clara(db: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_ES_")}
    return subprocess.Popen(
        [sys.executable, "-m", "clara_es", *args, "--db", str(db)], cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_a_second_run_on_one_sqlite_file_exits_2_and_the_first_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "clara-es.db"
    first = clara(db, "run")
    try:
        assert first.stdout is not None
        assert "running" in first.stdout.readline()
        second = clara(db, "run")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert err.splitlines() == [
            f"clara-es: error: {db} is in use by clara-es pid {first.pid}: SQLite runs one "
            "`clara-es run` or `serve` per file; stop that one first, or use PostgreSQL "
            "(CLARA_ES_DATABASE_URL) to run several processes"
        ]
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0
    assert "stopped" in out
