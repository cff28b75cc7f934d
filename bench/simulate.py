"""Simulated sessions per second of wall time, against plain commands on the same store.

    python -m bench.simulate [--sessions 300] [--seed 7] [--json]

For each store (SQLite file; PostgreSQL if reachable): `simulate` (seeded faults, invariants
after every command, a shortest-trace search only on violation) first without and then with
the final projections-versus-rebuild check. The baseline, in the same process on a fresh store
of the same kind, is bench.commands' scripted session: six plain commands, nothing checked.
The ratio compares commands per second: what the simulator's driver and checks cost.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.commands import bench_sessions
from bench.common import backends, fresh_store
from clara_es.replay.simulate import simulate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
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
        rows.append({
            "store": backend, "sessions": args.sessions, "commands": outcome.commands,
            "sessions_per_s": round(args.sessions / run, 1),
            "sessions_per_s_with_projection_check": round(args.sessions / whole, 1),
            "sim_commands_per_s": round(outcome.commands / run),
            "plain_commands_per_s": round(baseline),
            "ratio": round(outcome.commands / run / baseline, 2),
        })
        if not args.json:
            r = rows[-1]
            print(
                f"{backend:8} {r['sessions_per_s']:>6} sessions/s"
                f" ({r['sessions_per_s_with_projection_check']} with the projection check)"
                f"  simulated {r['sim_commands_per_s']}/s vs plain {r['plain_commands_per_s']}/s"
                f" commands  ratio {r['ratio']:.2f}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
