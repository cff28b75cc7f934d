"""Several processes started at the same moment on a fresh PostgreSQL schema all come up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clara_es.adapters.store import Store

ROOT = Path(__file__).resolve().parent.parent.parent

START = """
from clara_es.bootstrap import bootstrap
root = bootstrap()
app = root.open_sessions()
worker = root.worker(app)
worker.run_pending()
worker.close()
app.close()
print("up")
"""


@pytest.mark.postgres
def test_four_processes_create_and_migrate_one_fresh_schema_at_once(
    postgres_store: Store,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_ES_")}
    env |= {"CLARA_ES_DATABASE_URL": postgres_store.url, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", START], cwd=ROOT, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "up"
        assert "Traceback" not in err
