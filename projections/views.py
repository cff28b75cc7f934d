"""The four views, by name."""

from __future__ import annotations

from projections.attempt_counts import AttemptCountsView
from projections.history import HistoryView
from projections.stats import StatsView
from projections.ui_state import UIStateView
from projections.view import View

VIEWS: dict[str, type[View]] = {
    view.name: view for view in (UIStateView, AttemptCountsView, HistoryView, StatsView)
}


def select(names: list[str] | tuple[str, ...] | None = None) -> list[type[View]]:
    """The named views (all when none are named); an unknown name is a ValueError."""
    if not names:
        return list(VIEWS.values())
    unknown = [n for n in names if n not in VIEWS]
    if unknown:
        raise ValueError(f"unknown view {', '.join(unknown)}: one of {', '.join(VIEWS)}")
    return [VIEWS[n] for n in names]
