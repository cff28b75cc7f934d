"""The fault campaign's short version: `serve` under load, SIGKILLed twice and started again."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.fault_campaign import campaign


def test_nothing_acknowledged_is_lost_when_serve_is_killed(tmp_path: Path) -> None:
    figures = campaign(tmp_path / "campaign.db", kills=2, seed=7, load_s=1.0)
    assert figures.kills == 2
    assert figures.acknowledged > 0
    assert figures.lost == 0
    assert figures.verified
    assert figures.views_equal_rebuild
