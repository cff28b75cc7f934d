"""The `clara-es` command line.

Each command's module is imported only when that command runs or shows its own help, so
`clara-es --help` starts without LiveKit, FastAPI, Alembic or eventsourcing; the table below
gives the listing its one-line help (a test keeps it equal to each command's own).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

# name: (module:attribute, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "agent": ("agent:agent",
              "Join a LiveKit room as the agent and record the user's connection on its "
              "session."),
    "db": ("db:db", "The database's own tables (the views), migrated by Alembic."),
    "demo": ("demo:demo",
             "Run the reconnection checklist: a 5 s drop that recovers, a 40 s outage that "
             "fails and is cleaned up by the server."),
    "export": ("transfer:export", "Write one session's stream, with its metadata, as JSON lines."),
    "history": ("history:history", "Print stored events, oldest first."),
    "import": ("transfer:import_",
               "Load an exported session into the store: all of it, or nothing."),
    "projections": ("projections:projections",
                    "The materialised views: ui_state, attempt_counts, history, stats."),
    "races": ("races:races", "Find races in one session's history, or in every stored session's."),
    "replay": ("replay:replay",
               "Replay SESSION_ID event by event: state, status text and cause after each step."),
    "run": ("run:run",
            "Run the process manager, its timers, the effect runner and the views until "
            "interrupted."),
    "serve": ("serve:serve",
              "Serve the HTTP API, the status page (/) and the dashboard (/dashboard)."),
    "sessions": ("queries:sessions",
                 "List sessions with their UI state and attempt counts, most recent first."),
    "simulate": ("simulate:simulate_command",
                 "Simulate sessions with seeded drops, duplicates, late and reordered signals "
                 "and crashes."),
    "stats": ("queries:stats",
              "Dashboard stats: states, recovery rate, time to recover, failures, orphans."),
    "status": ("queries:status",
               "What the status light and the Start Session button show for one session."),
    "token": ("token:token", "Print a bearer token for the HTTP API."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module, attribute = COMMANDS[cmd_name][0].split(":")
        command: click.Command = getattr(
            importlib.import_module(f"clara_es.cli.{module}"), attribute
        )
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from the table, shortened as click shortens a command's own help."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clara-es")
def cli() -> None:
    """Event-sourced LiveKit voice sessions that recover from network blinks."""


def _one_line(exc: Exception) -> str:
    """A domain refusal or a store error as one line; anything else is a bug and is raised."""
    # A command that raised a DomainError has imported the domain already.
    domain = sys.modules.get("clara_es.domain.errors")
    if domain is not None and isinstance(exc, domain.DomainError):
        return str(exc)
    from clara_es.cli.errors import OPENED, explain

    line = explain(exc, OPENED.where)
    if line is None:
        raise exc
    OPENED.remove_new_files()
    return line


def one_line(message: str) -> str:
    """An error as one line whatever it quotes: click's wrapped lists joined with spaces,
    and any other control character (typed into an argument, say) shown escaped."""
    joined = " ".join(part.strip() for part in message.split("\n") if part.strip())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)


_native_threads_started = False


def native_threads_started() -> None:
    """Called by a command once LiveKit's native runtime runs: `main` then exits without
    finalizing the interpreter (see there why)."""
    global _native_threads_started
    _native_threads_started = True


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors are one line on stderr and exit status 2."""
    code = invoke(argv)
    if _native_threads_started:
        # LiveKit's native threads call back into Python (its logs, its events); one that does
        # so while the interpreter finalizes is killed mid-call and the process aborts (rc -6,
        # seen in CI). The command has closed its store and said its last line by now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def invoke(argv: list[str] | None = None) -> int:
    """One command, its errors turned into one line on stderr; returns the exit status."""
    from clara_es.cli.errors import OPENED

    global _native_threads_started
    _native_threads_started = False
    OPENED.forget()
    try:
        result = cli.main(args=argv, prog_name="clara-es", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("clara-es: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"clara-es: error: {one_line(exc.format_message())}", err=True)
        return 2
    except Exception as exc:
        click.echo(f"clara-es: error: {one_line(_one_line(exc))}", err=True)
        return 2
    return result if isinstance(result, int) else 0
