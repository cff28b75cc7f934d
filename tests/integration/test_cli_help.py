"""`clara-es --help` lists every command with its one-line help."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from clara_es.cli import COMMANDS, cli


def test_help_lists_every_command_with_its_one_line_help() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listing] == sorted(COMMANDS)
    for line in listing:
        name, text = line.split(maxsplit=1)
        assert text == COMMANDS[name][1]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listing_says_what_the_command_says_of_itself(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.get_short_help_str(limit=1000) == COMMANDS[name][1]
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f" {name} [OPTIONS]" in result.output.splitlines()[0]
