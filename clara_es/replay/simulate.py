"""`clara-es simulate`: many sessions, seeded faults, invariants after every step.

Everything the sessions suffer comes from `faults.plan_for(seed, index)`, so a seed replays
exactly and one session's run can be reproduced on its own (`--only`). A violation is re-run
with its session alone and its faults removed one by one while it persists: the shortest
trace. At the end each projection is brought up to date and compared with its rebuild.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from clara_es.adapters.store import Store
from clara_es.bootstrap import Root, read_settings
from clara_es.config import Settings
from clara_es.domain import VirtualClock
from clara_es.process import SkippedRoomCleaner
from clara_es.replay.faults import Plan, plan_for
from clara_es.replay.invariants import Violation
from clara_es.replay.pacing import Paced
from clara_es.replay.world import TimerWorker, TraceStep, World
from projections.catch_up import catch_up, rebuild
from projections.db import engine, upgrade
from projections.runner import BATCH as LIVE_BATCH
from projections.views import VIEWS

NOT_CHECKED: list[str] = []


class Found(BaseModel):
    violation: Violation
    session: int
    trace: list[TraceStep]
    reproduce: str


class Outcome(BaseModel):
    seed: int
    sessions: int
    steps: int
    commands: int
    faults: dict[str, int]
    final_states: dict[str, int]
    violations: list[Found]
    projections_match_rebuild: bool | None
    not_checked: list[str]


@contextmanager
def _store(store: Store | None) -> Iterator[Store]:
    """The given store, or a temporary SQLite file."""
    if store is not None:
        yield store
        return
    with tempfile.TemporaryDirectory(prefix="clara-es-simulate-", dir=_in_memory()) as scratch:
        yield Store.sqlite(Path(scratch) / "simulate.db")


def _in_memory() -> str | None:
    """A folder in memory (tmpfs) for the temporary store where the system has one: the same
    SQLite store, without a disk flush per commit. None: the default temporary folder."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


STAGGER = 0.01  # seconds between two sessions' starts


def _run(plans: dict[int, Plan], root: Root, worker: type[TimerWorker]) -> World:
    clock = VirtualClock()
    app = root.open_sessions(clock=clock, sole_writer=True)
    try:
        world = World(app, clock, plans, worker, deadline_s=root.settings.attempt_timeout_s)
        for index in plans:
            world.at(clock.now() + timedelta(seconds=index * STAGGER), index, "start",
                     _starter(world, index))
        process_manager = Paced(root.worker(app, cleaner=SkippedRoomCleaner()), world.started_at)
        try:
            world.run(process_manager)
        finally:
            process_manager.close()
        for index, session_id in world.ids.items():
            cleanup = world.invariants.cleaned_up_once(session_id)
            if cleanup is not None:
                world.violations.setdefault(index, cleanup)
        world.final_states = Counter(
            str(app.status(i).connection_state) for i in world.ids.values()
        )
        return world
    finally:
        app.close()


def _starter(world: World, index: int) -> Callable[[], None]:
    return lambda: world.start_session(index)


def _alone(plan: Plan, settings: Settings, worker: type[TimerWorker]) -> World:
    with _store(None) as store:
        return _run({plan.index: plan}, Root(settings, store), worker)


def _smaller(plan: Plan) -> Iterator[Plan]:
    """Plans with one thing less, the biggest cuts first."""
    for keep in range(1, len(plan.outages)):
        yield replace(plan, outages=plan.outages[:keep])
    for name in ("duplicate_timer", "late_outcome", "reorder_outcome", "client_crash"):
        if getattr(plan, name):
            yield replace(plan, **{name: frozenset()})
    if plan.worker_crash_at is not None:
        yield replace(plan, worker_crash_at=None)
    if plan.quality_spell:
        yield replace(plan, quality_spell=False)
    for k, outage in enumerate(plan.outages):
        for flag in ("at_once", "duplicate_report", "end_during"):
            if getattr(outage, flag):
                outages = list(plan.outages)
                outages[k] = replace(outage, **{flag: False})
                yield replace(plan, outages=outages)


def shortest(
    plan: Plan, invariant: str, settings: Settings, worker: type[TimerWorker]
) -> tuple[Plan, World] | None:
    """The session alone, its faults removed one by one while the same invariant still breaks."""
    world = _alone(plan, settings, worker)
    if not _breaks(world, plan.index, invariant):
        return None
    improved = True
    while improved:
        improved = False
        for candidate in _smaller(plan):
            attempt = _alone(candidate, settings, worker)
            if _breaks(attempt, plan.index, invariant):
                plan, world, improved = candidate, attempt, True
                break
    return plan, world


def _breaks(world: World, index: int, invariant: str) -> bool:
    violation = world.violations.get(index)
    return violation is not None and violation.invariant == invariant


def reproduce_command(sessions: int, seed: int, steps: int, index: int) -> str:
    return f"clara-es simulate --sessions {sessions} --seed {seed} --steps {steps} --only {index}"


def _trace_until(world: World, index: int, violation: Violation) -> list[TraceStep]:
    t = (violation.at - world.started_at).total_seconds()
    return [step for step in world.trace.get(index, []) if step.t <= t + 0.001]  # rounded


def _view_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    view_engine = engine(store)
    try:
        with view_engine.connect() as conn:
            return {
                table.name: [tuple(r) for r in conn.execute(
                    sa.select(table).order_by(*table.primary_key.columns))]
                for view in VIEWS.values() for table in (*view.tables, view.tracking)
            }
    finally:
        view_engine.dispose()


def projections_match_rebuild(store: Store) -> bool:
    """Bring every view up to date in the live runner's batches, and rebuild it from nothing
    in one: same rows? On a SQLite file the rebuild runs on a copy, in a child process, beside
    the catch-up (the two folds are the check's whole cost), and the store keeps the views
    caught up, to look into when they differ; elsewhere the store is rebuilt in place."""
    upgrade(store)
    path = store.sqlite_path
    if path is None or "fork" not in mp.get_all_start_methods():
        catch_up(store, batch=LIVE_BATCH)
        live = _view_rows(store)
        rebuild(store)
        return _view_rows(store) == live
    with tempfile.TemporaryDirectory(prefix="clara-es-rebuild-", dir=_in_memory()) as scratch:
        copy = Store.sqlite(Path(scratch) / "rebuild.db")
        with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(
                copy.sqlite_path)) as target:  # type: ignore[arg-type]
            source.backup(target)
        # Forked: the child needs nothing from this process but the copy's path.
        child = mp.get_context("fork").Process(target=rebuild, args=(copy,), daemon=True)
        child.start()
        try:
            catch_up(store, batch=LIVE_BATCH)
            live = _view_rows(store)
        finally:
            child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"the views' rebuild on a copy of the store failed "
                               f"(exit code {child.exitcode})")
        return _view_rows(copy) == live


def simulate(
    sessions: int,
    seed: int,
    steps: int = 3,
    *,
    only: int | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
    worker: type[TimerWorker] = TimerWorker,
    check_projections: bool = True,
    shrink_at_most: int = 5,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Run the simulation; `only` runs one session of it, with the timing it has in the whole.

    The process manager's timing comes from `settings` (read from the environment if none).
    """
    settings = settings if settings is not None else read_settings()
    if only is not None and not 0 <= only < sessions:
        raise ValueError(f"--only {only}: sessions are numbered 0 to {sessions - 1}")
    indices = [only] if only is not None else list(range(sessions))
    plans = {i: plan_for(seed, i, steps) for i in indices}
    with _store(store) as chosen:
        world = _run(plans, Root(settings, chosen), worker)
        if progress:
            progress(f"{world.commands} commands; checking the projections")
        views_ok = projections_match_rebuild(chosen) if check_projections else None
    found = []
    for index, violation in sorted(world.violations.items()):
        trace = _trace_until(world, index, violation)
        if len(found) < shrink_at_most:
            if progress:
                progress(f"shrinking the violation of session {index}")
            smallest = shortest(plans[index], violation.invariant, settings, worker)
            if smallest is not None:
                _, alone = smallest
                violation = alone.violations[index]
                trace = _trace_until(alone, index, violation)
        found.append(Found(violation=violation, session=index, trace=trace,
                           reproduce=reproduce_command(sessions, seed, steps, index)))
    return Outcome(
        seed=seed, sessions=len(indices), steps=steps, commands=world.commands,
        faults=dict(sorted(world.faults.items())), final_states=dict(world.final_states),
        violations=found, projections_match_rebuild=views_ok, not_checked=NOT_CHECKED,
    )
