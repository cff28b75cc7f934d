"""One-shot work on the views: bring them up to date, or drop and rebuild them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from clara_es.adapters.store import Store
from projections.runner import ONE_SHOT_BATCH, ViewLocks, ViewRunner, group_name
from projections.view import View
from projections.views import select

Progress = Callable[[str, int, int], None]


def catch_up(
    store: Store, views: Iterable[type[View]] | None = None, progress: Progress | None = None,
    batch: int = ONE_SHOT_BATCH,
) -> dict[str, int]:
    """Apply every stored event the views have not applied yet, `batch` events per
    transaction; returns their positions. ViewsBusy if another process keeps the views live
    (PostgreSQL)."""
    return _each(store, views, progress, rebuild=False, batch=batch)


def rebuild(
    store: Store, views: Iterable[type[View]] | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Drop each view's rows and position, then apply the whole log again. ViewsBusy, with
    nothing dropped, if another process keeps the views live (PostgreSQL)."""
    return _each(store, views, progress, rebuild=True, batch=ONE_SHOT_BATCH)


def _each(
    store: Store, views: Iterable[type[View]] | None, progress: Progress | None, *,
    rebuild: bool, batch: int,
) -> dict[str, int]:
    group = list(views) if views is not None else select()
    locks = ViewLocks(store)
    try:
        # The live runners' group (every view) and this one: no runner follows them meanwhile.
        with locks.exclusive([group_name(select()), group_name(group)]):
            return _run(store, group, progress, rebuild=rebuild, batch=batch)
    finally:
        locks.close()


def _run(
    store: Store, group: list[type[View]], progress: Progress | None, *, rebuild: bool,
    batch: int,
) -> dict[str, int]:
    runner = ViewRunner(store, group, batch=batch)
    try:
        if rebuild:
            runner.view.reset(runner.app.name)
        head = runner.head()
        report = None if progress is None else _reporter(progress, runner.names, head)
        if report is not None:
            report(runner.position())
        runner.catch_up(progress=report)
        positions = runner.view.positions(runner.app.name)
    finally:
        runner.close()
    return {name: position or 0 for name, position in positions.items()}


def _reporter(progress: Progress, names: list[str], head: int) -> Callable[[int], None]:
    def report(position: int) -> None:
        for name in names:
            progress(name, position, head)

    return report
