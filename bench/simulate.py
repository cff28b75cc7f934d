"""Simulated sessions per second of wall time, against plain commands on the same store.

    python -m bench.simulate [--sessions 300] [--seed 7] [--json]

For each store (SQLite file; PostgreSQL if reachable): `simulate` (seeded faults, invariants
after every command, a shortest-trace search only on violation) first without and then with
the final projections-versus-rebuild check. The baseline, in the same process on a fresh store
of the same kind, is bench.commands' scripted session: six plain commands, nothing checked.
The ratio compares commands per second: what the simulator's driver and checks cost.
"""

from __future__ import annotations

import time

from bench.commands import bench_sessions
from bench.common import Report, arguments, backends, fresh_store
from clara_es.replay.simulate import simulate


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv, sessions=300, seed=7)
    report = Report(
        "{store:8} {sessions_per_s:>6} sessions/s"
        " ({sessions_per_s_with_projection_check} with the projection check)"
        "  simulated {sim_commands_per_s}/s vs plain {plain_commands_per_s}/s"
        " commands  ratio {ratio:.2f}",
        args.json,
    )
    for backend in backends():
        with fresh_store(backend) as store:
            baseline = bench_sessions(store.eventsourcing_env(), args.sessions, 1)
        with fresh_store(backend) as store:
            started = time.perf_counter()
            outcome = simulate(args.sessions, args.seed, store=store, check_projections=False)
            run = time.perf_counter() - started
        with fresh_store(backend) as store:
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
