"""`clara-es simulate`: many sessions under a seeded fault schedule, invariants after each step."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from clara_es.adapters.store import Store
from clara_es.bootstrap import setup_logging
from clara_es.cli.common import CommandError, console, json_option, print_json, settings
from clara_es.replay.simulate import Outcome, simulate


@click.command(name="simulate")
@click.option("--sessions", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=3, show_default=True,
              help="Network drops per session.")
@click.option("--only", type=int, help="Run one session of the simulation (to reproduce it).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the simulated store in this SQLite file (default: a temporary one).")
@json_option
def simulate_command(
    sessions: int, seed: int, steps: int, only: int | None, db: Path | None, as_json: bool
) -> None:
    """Simulate sessions with seeded drops, duplicates, late and reordered signals and crashes."""
    if db is not None and db.exists():
        raise CommandError(f"{db} exists: the simulation writes a fresh store")
    config = settings()
    setup_logging(config, quiet=True)
    # A line per phase, not a live spinner: the simulator forks (replay/processes.py), and a
    # spinner's thread could hold a lock the children inherit.
    status = Console(stderr=True)
    try:
        outcome = simulate(sessions, seed, steps, only=only,
                           store=Store.sqlite(db) if db is not None else None,
                           settings=config,
                           progress=lambda text: status.print(text, style="dim"))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if as_json:
        print_json(outcome)
    else:
        _print(outcome)
    if outcome.violations:
        click.get_current_context().exit(1)


def _print(outcome: Outcome) -> None:
    faults = Table(title=f"seed {outcome.seed}: {outcome.sessions} sessions, "
                         f"{outcome.commands} commands")
    faults.add_column("fault injected")
    faults.add_column("times", justify="right")
    for name, count in outcome.faults.items():
        faults.add_row(name, str(count))
    console.print(faults)
    states = ", ".join(f"{n} {state}" for state, n in outcome.final_states.items())
    console.print(f"final states: {states}")
    views = {True: "equal their rebuild", False: "DIFFER from their rebuild", None: "not checked"}
    console.print(f"projections: {views[outcome.projections_match_rebuild]}")
    for note in outcome.not_checked:
        console.print(f"not checked: {note}")
    console.print(f"violations: {len(outcome.violations)}")
    for found in outcome.violations:
        v = found.violation
        console.print(f"\nsession {found.session} ({v.session_id}) v{v.version}: "
                      f"[bold red]{v.invariant}[/]: {v.message}", soft_wrap=True)
        console.print("  shortest trace:")
        for step in found.trace:
            console.print(f"    {step.t:9.3f}s  {step.step}", soft_wrap=True)
        console.print(f"  reproduce: {found.reproduce}", soft_wrap=True)
