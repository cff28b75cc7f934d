"""The `clara-es` command line."""

from __future__ import annotations

import sys

import click

from clara_es.cli.agent import agent
from clara_es.cli.db import db
from clara_es.cli.demo import demo
from clara_es.cli.history import history
from clara_es.cli.projections import projections
from clara_es.cli.queries import sessions, stats, status
from clara_es.cli.races import races
from clara_es.cli.replay import replay
from clara_es.cli.run import run
from clara_es.cli.serve import serve
from clara_es.cli.simulate import simulate_command
from clara_es.cli.token import token
from clara_es.cli.transfer import export, import_
from clara_es.domain import DomainError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clara-es")
def cli() -> None:
    """Event-sourced LiveKit voice sessions that recover from network blinks."""


cli.add_command(agent)
cli.add_command(demo)
cli.add_command(history)
cli.add_command(db)
cli.add_command(projections)
cli.add_command(sessions)
cli.add_command(status)
cli.add_command(serve)
cli.add_command(token)
cli.add_command(stats)
cli.add_command(replay)
cli.add_command(races)
cli.add_command(export)
cli.add_command(import_)
cli.add_command(simulate_command)
cli.add_command(run)


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors are one line on stderr and exit status 2."""
    try:
        code = cli.main(args=argv, prog_name="clara-es", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("clara-es: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"clara-es: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except DomainError as exc:
        click.echo(f"clara-es: error: {exc}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
