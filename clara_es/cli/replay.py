"""`clara-es replay`: a session step by step, its state as of any point, and `--verify`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from clara_es.application import HistoryEntry, VoiceSessions
from clara_es.cli import common
from clara_es.domain import UIState
from clara_es.replay.races import RaceKind, find_races, session_ids
from clara_es.replay.timeline import ReplayStep, replay_steps, state_at
from clara_es.replay.verify import Difference, verify_sessions


def parse_point(value: str) -> int | datetime:
    """`--at`: a version (a whole number) or an ISO 8601 time (UTC if it names no zone)."""
    if value.isdigit():
        return int(value)
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise common.CommandError(
            f"--at {value!r} is neither a version (a number) nor an ISO 8601 time"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


@click.command()
@click.argument("session_id", type=click.UUID, required=False)
@click.option("--at", "at", metavar="VERSION|TIME", help="The state as of a version or a time.")
@click.option("--verify", is_flag=True, help="Re-run stored signals through today's code.")
@click.option("--all", "every", is_flag=True, help="With --verify: every stored session.")
@common.db_option
@common.json_option
def replay(
    session_id: UUID | None, at: str | None, verify: bool, every: bool, db: Path | None,
    as_json: bool,
) -> None:
    """Replay SESSION_ID event by event: state, status text and cause after each step."""
    if verify:
        if at is not None:
            raise common.CommandError("--at and --verify do not go together")
        if (session_id is None) == (not every):
            raise common.CommandError("--verify needs a SESSION_ID or --all (not both)")
        _verify(session_id, db, as_json)
        return
    if every:
        raise common.CommandError("--all only goes with --verify")
    if session_id is None:
        raise common.CommandError("replay needs a SESSION_ID (or --verify --all)")
    with common.open_app(common.root_for(db)) as app:
        if at is not None:
            _print_state_at(app, session_id, parse_point(at), as_json)
            return
        steps = replay_steps(app, session_id)
    if as_json:
        common.print_json({"session_id": session_id, "steps": [_step_document(s) for s in steps]})
    else:
        _print_steps(session_id, steps)


def _state_document(state: UIState) -> dict[str, Any]:
    return {
        "connection_state": state.connection_state,
        "attempt": state.attempt,
        "max_attempts": state.max_attempts,
        "next_retry_at": state.next_retry_at,
        "status_text": state.status_text,
        "start_enabled": state.start_enabled,
        "version": state.version,
    }


def _step_document(step: ReplayStep) -> dict[str, Any]:
    e = step.entry
    return {
        "version": e.version,
        "type": e.type,
        "occurred_at": e.occurred_at,
        "actor": e.actor,
        "cause": e.cause,
        "details": e.details,
        "state": _state_document(e.state),
        "races": [r.model_dump(mode="json", exclude={"session_id"}) for r in step.races],
    }


def _print_state_at(
    app: VoiceSessions, session_id: UUID, point: int | datetime, as_json: bool
) -> None:
    state = state_at(app, session_id, point)
    if as_json:
        common.print_json({"session_id": session_id, "at": point, "state": _state_document(state)})
        return
    common.console.print(f"session {session_id} as of {point} (version {state.version}):")
    common.console.print(f"  {_state_text(state)}")
    common.console.print(f"  UI: {state.status_text}")


def _state_text(state: UIState) -> str:
    parts = [str(state.connection_state)]
    if state.attempt:
        parts.append(f"attempt {state.attempt} of {state.max_attempts}")
    if state.next_retry_at is not None:
        parts.append(f"next due {state.next_retry_at.strftime('%H:%M:%S.%f')[:-3]}")
    return ", ".join(parts)


def _cause_text(e: HistoryEntry) -> str:
    cause = e.cause
    args = " ".join(
        f"{k}={v}" for k, v in (cause.get("args") or {}).items() if not isinstance(v, dict)
    )
    late = (e.recorded_at - e.occurred_at).total_seconds()
    recorded = f", recorded {late:+.3f} s later" if late else ""
    return f"{cause.get('name')}({args}) read v{cause.get('read_version')}{recorded}"


def _print_steps(session_id: UUID, steps: list[ReplayStep]) -> None:
    table = Table(title=f"replay of session {session_id}")
    for column in ("time", "v", "event", "actor"):
        table.add_column(column, no_wrap=True)
    table.add_column("caused by", ratio=3)
    table.add_column("state after", ratio=2)
    table.add_column("UI", ratio=2)
    for step in steps:
        e = step.entry
        style = "bold yellow" if step.races else None
        table.add_row(
            e.occurred_at.strftime("%H:%M:%S.%f")[:-3], str(e.version),
            ("! " if step.races else "") + e.type, e.actor, _cause_text(e), _state_text(e.state),
            e.state.status_text, style=style,
        )
    common.console.print(table)
    for step in steps:
        for race in step.races:
            common.console.print(
                f"[bold yellow]! v{race.version} {race.kind}[/]: {race.explanation}; "
                f"{race.resolution}",
                soft_wrap=True,
            )


def _verify(session_id: UUID | None, db: Path | None, as_json: bool) -> None:
    with common.open_app(common.root_for(db)) as app:
        ids = [session_id] if session_id is not None else list(session_ids(app))
        with Progress(console=Console(stderr=True), transient=True, disable=as_json) as bar:
            task = bar.add_task("verifying sessions", total=len(ids))
            checked, differences = verify_sessions(
                app, ids, progress=lambda _: bar.advance(task)
            )
        early = [r for r in find_races(app, ids) if r.kind == RaceKind.EARLY_ATTEMPT]
    if as_json:
        common.print_json({"sessions_checked": checked, "differences": differences,
                    "early_attempts": early})
    else:
        _print_differences(checked, differences)
        for race in early:
            common.console.print(
                f"  flagged: {race.session_id} v{race.version}: {race.explanation}", soft_wrap=True
            )
    if differences:
        click.get_current_context().exit(1)


def _print_differences(checked: int, differences: list[Difference]) -> None:
    if not differences:
        common.console.print(
            f"{checked} sessions verified: today's code decides every one the same"
        )
        return
    common.console.print(f"{len(differences)} of {checked} sessions decide differently today:")
    for d in differences:
        common.console.print(
            f"  {d.session_id} v{d.version} on {d.signal}: {d.note}\n"
            f"      stored: {_event_text(d.stored)}\n      today:  {_event_text(d.today)}",
            soft_wrap=True,
        )


def _event_text(view: Any) -> str:
    if view is None:
        return "-"
    details = " ".join(f"{k}={v}" for k, v in view.details.items() if not isinstance(v, dict))
    return f"{view.type} {details}".strip()
