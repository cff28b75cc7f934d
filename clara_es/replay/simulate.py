"""`clara-es simulate`: many sessions, seeded faults, invariants after every step.

Everything the sessions suffer comes from `faults.plan_for(seed, index)`, so a seed replays
exactly and one session's run can be reproduced on its own (`--only`). A violation is re-run
with its session alone and its faults removed one by one while it persists: the shortest
trace. At the end each projection is brought up to date and compared with its rebuild.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import NamedTuple

from pydantic import BaseModel

from clara_es.adapters.store import Store
from clara_es.bootstrap import Root, read_settings
from clara_es.config import Settings
from clara_es.domain import VirtualClock
from clara_es.process import SkippedRoomCleaner
from clara_es.replay.faults import Plan, plan_for
from clara_es.replay.invariants import Violation
from clara_es.replay.pacing import Paced
from clara_es.replay.processes import forking
from clara_es.replay.scratch import SESSION_BYTES, scratch_store
from clara_es.replay.views_check import projections_match_rebuild
from clara_es.replay.world import Crash, TimerWorker, TraceStep, World, crashes_of

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
def _store(store: Store | None, sessions: int) -> Iterator[Store]:
    """The given store, or a temporary SQLite file for `sessions`."""
    if store is not None:
        yield store
        return
    with scratch_store("simulate", expected_bytes=sessions * SESSION_BYTES) as scratch:
        yield scratch


# Processes a run's sessions are dealt to (session i to shard i % SHARDS), each with its own
# store, process manager and timer worker. Sessions share nothing but the timer worker's
# crashes, which every shard replays (world.Crash), and the process manager's wakes, which
# fall on a grid no session moves (pacing.py): a session's run is the same whatever the
# shards. A given store holds one shard.
SHARDS = 2


def run_sessions(
    plans: dict[int, Plan], root: Root, worker: type[TimerWorker], others: list[Crash],
) -> World:
    """Run the sessions of `plans` in this process; `others`: the timer worker's crashes of
    the run's other sessions (every session lives through every crash)."""
    clock = VirtualClock()
    app = root.open_sessions(clock=clock, sole_writer=True)
    try:
        world = World(app, clock, plans, worker, deadline_s=root.settings.attempt_timeout_s)
        world.start(others)
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


def _alone(
    plan: Plan, settings: Settings, worker: type[TimerWorker], others: list[Crash]
) -> World:
    with _store(None, 1) as store:
        return run_sessions({plan.index: plan}, Root(settings, store), worker, others)


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
    plan: Plan, invariant: str, settings: Settings, worker: type[TimerWorker],
    others: list[Crash],
) -> tuple[Plan, World] | None:
    """The session alone (with the other sessions' crashes), its faults removed one by one
    while the same invariant still breaks."""
    world = _alone(plan, settings, worker, others)
    if not _breaks(world, plan.index, invariant):
        return None
    improved = True
    while improved:
        improved = False
        for candidate in _smaller(plan):
            attempt = _alone(candidate, settings, worker, others)
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


class Shard(BaseModel):
    """What one shard's run found: its figures, and each violation with its trace."""

    commands: int
    faults: dict[str, int]
    final_states: dict[str, int]
    violations: dict[int, tuple[Violation, list[TraceStep]]]
    views_ok: bool | None


def _shard(
    plans: dict[int, Plan], others: list[Crash], settings: Settings,
    worker: type[TimerWorker], store: Store | None, check_projections: bool,
) -> Shard:
    with _store(store, len(plans)) as chosen:
        world = run_sessions(plans, Root(settings, chosen), worker, others)
        views_ok = projections_match_rebuild(chosen) if check_projections else None
    return Shard(
        commands=world.commands, faults=dict(world.faults), final_states=dict(world.final_states),
        violations={i: (v, _trace_until(world, i, v)) for i, v in world.violations.items()},
        views_ok=views_ok,
    )


class ShardJob(NamedTuple):
    plans: dict[int, Plan]
    others: list[Crash]  # the timer worker's crashes drawn by the other shards' sessions
    settings: Settings
    worker: type[TimerWorker]
    store: Store | None
    check_projections: bool


def _run_shards(jobs: list[ShardJob]) -> list[Shard]:
    """Each shard in a process of its own, or one after the other (processes.py)."""
    context = forking()
    if len(jobs) == 1 or context is None:
        return [_shard(*job) for job in jobs]
    with ProcessPoolExecutor(len(jobs), mp_context=context) as pool:
        return list(pool.map(_shard, *zip(*jobs, strict=True)))


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
    everyone = {i: plan_for(seed, i, steps) for i in range(sessions)}
    indices = [only] if only is not None else list(range(sessions))
    parts = [indices] if store is not None or len(indices) == 1 else [
        indices[k::SHARDS] for k in range(min(SHARDS, len(indices)))]
    crashes = {crash.index: crash for crash in crashes_of(everyone.values())}
    jobs: list[ShardJob] = []
    for part in parts:
        members = set(part)
        others = [c for i, c in crashes.items() if i not in members]
        jobs.append(ShardJob({i: everyone[i] for i in part}, others, settings, worker, store,
                             check_projections))
    if progress:
        processes = "a process" if len(parts) == 1 else f"{len(parts)} processes"
        progress(f"simulating {len(indices)} sessions in {processes}"
                 + (", then checking their projections" if check_projections else ""))
    shards = _run_shards(jobs)
    found = []
    violations = sorted((i, v) for shard in shards for i, v in shard.violations.items())
    for index, (violation, trace) in violations:
        if len(found) < shrink_at_most:
            if progress:
                progress(f"shrinking the violation of session {index}")
            others = [c for i, c in crashes.items() if i != index]
            smallest = shortest(everyone[index], violation.invariant, settings, worker, others)
            if smallest is not None:
                _, alone = smallest
                violation = alone.violations[index]
                trace = _trace_until(alone, index, violation)
        found.append(Found(violation=violation, session=index, trace=trace,
                           reproduce=reproduce_command(sessions, seed, steps, index)))
    views = [shard.views_ok for shard in shards]
    return Outcome(
        seed=seed, sessions=len(indices), steps=steps,
        commands=sum(shard.commands for shard in shards),
        faults=dict(sorted(sum((Counter(s.faults) for s in shards), Counter()).items())),
        final_states=dict(sum((Counter(s.final_states) for s in shards), Counter())),
        violations=found, projections_match_rebuild=all(views) if check_projections else None,
        not_checked=NOT_CHECKED,
    )
