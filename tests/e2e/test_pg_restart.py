"""The fault campaign's PostgreSQL restart, short: `serve` under HTTP load on a throwaway
cluster (its own folder and port, never the shared server), PostgreSQL restarted once."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.pg_restart import campaign, missing_initdb
from tests.support.optional import require


def test_nothing_acknowledged_is_lost_when_postgresql_restarts(tmp_path: Path) -> None:
    require("a throwaway PostgreSQL cluster (initdb)", missing_initdb())
    figures = campaign(restarts=1, seed=7, load_s=1.5, log_folder=tmp_path)
    print(figures)
    assert figures.restarts == 1
    assert figures.acknowledged > 0
    assert figures.lost == 0
    assert figures.verified
    assert figures.views_equal_rebuild
    assert figures.due_backlog == 0  # no session is stuck
    assert len(figures.recovery_s) == 1  # a command was answered after the restart
