"""Simulated sessions per second of wall time, against plain commands on the same store.

    python -m bench.simulate [--sessions 300] [--seed 7] [--json]

For each store (SQLite file; PostgreSQL if reachable): `simulate` (seeded faults, invariants
after every command, a shortest-trace search only on violation) first without and then with
the final projections-versus-rebuild check, every session in this process on that one store.
Then `sharded`: the default run, the sessions dealt to SHARDS processes with a temporary
SQLite store each (`clara-es simulate` without --db). The baseline, in the same process on a
fresh store of the same kind (for `sharded`, SQLite where its shards' stores are: in memory
where the system has a tmpfs), is bench.commands' scripted session: six
plain commands, nothing checked.
The ratio compares commands per second: what the simulator's driver and checks cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.commands import bench_sessions
from bench.common import Report, arguments, backends, fresh_store
from clara_es.adapters.store import Store
from clara_es.replay.scratch import SESSION_BYTES, scratch_store
from clara_es.replay.simulate import simulate


@contextmanager
def _store(backend: str) -> Iterator[Store | None]:
    """The backend's fresh store; none for `sharded` (the simulator makes its own)."""
    if backend == "sharded":
        yield None
        return
    with fresh_store(backend) as store:
        yield store


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv, sessions=300, seed=7)
    report = Report(
        "{store:8} {sessions_per_s:>6} sessions/s"
        " ({sessions_per_s_with_projection_check} with the projection check)"
        "  simulated {sim_commands_per_s}/s vs plain {plain_commands_per_s}/s"
        " commands  ratio {ratio:.2f}",
        args.json,
    )
    for backend in [*backends(), "sharded"]:
        baseline_store = (scratch_store("bench", args.sessions * SESSION_BYTES)
                          if backend == "sharded" else fresh_store(backend))
        with baseline_store as store:
            baseline = bench_sessions(store.eventsourcing_env(), args.sessions, 1)
        with _store(backend) as store:
            started = time.perf_counter()
            outcome = simulate(args.sessions, args.seed, store=store, check_projections=False)
            run = time.perf_counter() - started
        with _store(backend) as store:
            started = time.perf_counter()
            checked = simulate(args.sessions, args.seed, store=store)
            whole = time.perf_counter() - started
        assert not outcome.violations and not checked.violations
        report.add(
            store=backend, sessions=args.sessions, commands=outcome.commands,
            sessions_per_s=round(args.sessions / run, 1),
            sessions_per_s_with_projection_check=round(args.sessions / whole, 1),
            sim_commands_per_s=round(outcome.commands / run),
            plain_commands_per_s=round(baseline),
            ratio=round(outcome.commands / run / baseline, 2),
        )
    report.finish()


if __name__ == "__main__":
    main()
