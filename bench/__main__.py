"""Every benchmark in bench/, at quick sizes, in one go: one JSON document.

    python -m bench all [--json]     (from the repository root)

Each benchmark runs in a process of its own (`python -m bench.NAME ARGS --json`) with the
quick arguments below (a module that is not listed runs with its own `QUICK_ARGS` if it
has them, else with its defaults). The document says the machine (cores, memory) and its
load average before and after, since the figures are only comparable as ratios on a shared
machine; each benchmark's figures are its own JSON, under its name, with its wall time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

QUICK: dict[str, list[str]] = {
    "commands": ["--sessions", "200"],
    "webhooks": ["--sessions", "100"],
    "process_manager": ["--sessions", "50"],
    "projections": ["--sessions", "200", "--seconds", "3", "--rounds", "1"],
    "simulate": ["--sessions", "100"],
    "http": ["--seconds", "2", "--feeds", "500", "--rounds", "1"],
    "feeds": ["--seconds", "2", "--rates", "200"],
    "outage": ["--quick"],
    "idle": ["--quick"],
}
NOT_BENCHMARKS = {"__main__", "common", "load", "bare_app", "sse_client"}


def benchmarks() -> dict[str, list[str]]:
    """Every module of bench/ with a main(), with its quick arguments."""
    found = dict(QUICK)
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name in found or module.name in NOT_BENCHMARKS:
            continue
        loaded = importlib.import_module(f"bench.{module.name}")
        if hasattr(loaded, "main"):
            found[module.name] = list(getattr(loaded, "QUICK_ARGS", []))
    return found


def machine() -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cores": os.cpu_count(), "memory_gib": round(pages / 2**30, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run(name: str, args: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", *args, "--json"],
                          capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    result: dict[str, Any] = {"args": args, "seconds": seconds}
    if done.returncode != 0:
        return {**result, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    try:
        return {**result, "figures": json.loads(done.stdout)}
    except json.JSONDecodeError:
        return {**result, "error": "no JSON on stdout", "stdout": done.stdout[-2000:]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["all"])
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    parser.add_argument("--only", nargs="*", help="these benchmarks only")
    args = parser.parse_args(argv)
    document: dict[str, Any] = {"machine_before": machine(), "benchmarks": {}}
    for name, quick in benchmarks().items():
        if args.only and name not in args.only:
            continue
        print(f"bench.{name} {' '.join(quick)}", file=sys.stderr, flush=True)
        document["benchmarks"][name] = run(name, quick)
    document["machine_after"] = machine()
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
