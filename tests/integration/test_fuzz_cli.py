"""hypothesis against the command line: generated arguments for every command (the right types
and junk, for each option and argument click knows of), run as the entry point runs them.
Whatever the arguments: never a traceback, exit status 0, 1 or 2, and a refusal is one line
on stderr starting `clara-es: error:`.

Long-running commands (`run`, `serve`, `agent`, `projections run`) only get stores that cannot
be served, so they end at once; paths are only ever ones inside the test's folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clara_es.cli import COMMANDS, cli
from tests.support.cli_runner import Ran, clara_es

LONG_RUNNING = {("run", "run"), ("serve", "serve"), ("agent", "agent"), ("projections", "run")}
KEYS = {"CLARA_ES_LIVEKIT_API_KEY": "fuzz-key",
        "CLARA_ES_LIVEKIT_API_SECRET": "fuzz-secret-that-is-long-enough-for-hs256"}


def commands() -> list[tuple[str, str]]:
    """(group, command) for every command; a plain command is its own group."""
    ctx = click.Context(cli)
    found = []
    for name in sorted(COMMANDS):
        command = cli.get_command(ctx, name)
        subs = command.commands if isinstance(command, click.Group) else {name: command}
        found.extend((name, sub) for sub in sorted(subs))
    return found


def command_of(group: str, name: str) -> click.Command:
    command = cli.get_command(click.Context(cli), group)
    assert command is not None
    return command.commands[name] if isinstance(command, click.Group) else command


@dataclass(frozen=True)
class Files:
    good: Path  # a store the demo wrote (its views up to date)
    corrupt: Path  # a text file named .db
    no_folder: Path  # in a folder that does not exist
    missing: Path  # in the test's folder, not there (yet)
    folder: Path
    export: Path  # a valid export of the good store's first session
    garbage: Path
    empty: Path
    session_ids: tuple[str, ...]

    def stores(self, long_running: bool) -> list[Path]:
        bad = [self.corrupt, self.no_folder, self.folder]
        return bad if long_running else [*bad, self.good, self.missing]

    def readable(self) -> list[Path]:
        return [self.export, self.garbage, self.empty, self.missing, self.folder]

    def writable(self) -> list[str]:
        return ["-", str(self.folder / "out.jsonl"), str(self.no_folder), str(self.folder)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("fuzz-cli")
    good = folder / "good.db"
    ran = clara_es("demo", "--db", str(good), "--json", env={"CLARA_ES_DATABASE_URL": None})
    assert ran.returncode == 0, ran.stderr
    ids = tuple(s["session_id"] for s in json.loads(ran.stdout)["sessions"])
    export = folder / "one.jsonl"
    assert clara_es("export", ids[0], "--db", str(good), "-o", str(export)).returncode == 0
    corrupt = folder / "corrupt.db"
    corrupt.write_text("not a database\n" * 10)
    garbage = folder / "garbage.jsonl"
    garbage.write_bytes(b'{"hash": 1}\n\xff\xfe\x00 not json\n')
    empty = folder / "empty.jsonl"
    empty.write_text("")
    shutil.copy(good, folder / "pristine.db")
    return Files(good, corrupt, folder / "absent" / "x.db", folder / "missing.db", folder,
                 export, garbage, empty, ids)


# Text a user might type: no NUL (argv cannot carry one), short.
JUNK = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]),
               max_size=24)
TIMES = st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01", "1", "0.5", "yesterday",
                         "2026-13-01T00:00:00"])
# Bounds that keep a valid run short (the simulator's sessions, the demo's clock).
BOUNDED = {
    ("simulate", "sessions"): st.integers(-2, 12),
    ("simulate", "steps"): st.integers(-1, 3),
    ("simulate", "only"): st.integers(-2, 12),
    ("demo", "max_attempts"): st.integers(-1, 12),
}


def value(param: click.Parameter, files: Files, group: str, long_running: bool) -> Any:
    """A strategy for one value of `param`: its own type mostly, junk sometimes."""
    kind = param.type
    if (group, param.name) in BOUNDED:
        typed: Any = BOUNDED[(group, param.name)].map(str)
    elif param.name == "db":
        return st.sampled_from([str(p) for p in files.stores(long_running)])
    elif isinstance(kind, click.File):
        mode = getattr(kind, "mode", "r")
        return st.sampled_from(files.writable() if "w" in mode else
                               [str(p) for p in files.readable()])
    elif isinstance(kind, click.Choice):
        typed = st.sampled_from(list(kind.choices))
    elif isinstance(kind, click.types.UUIDParameterType):
        typed = st.one_of(st.sampled_from(files.session_ids), st.uuids().map(str))
    elif isinstance(kind, click.types.IntParamType):
        typed = st.one_of(st.integers(-3, 200), st.integers(-(2**70), 2**70)).map(str)
    elif isinstance(kind, click.types.FloatParamType):
        typed = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str),
                          st.sampled_from(["inf", "-inf", "nan", "1e309", "0.5"]))
    elif param.name in ("since", "until", "at"):
        typed = st.one_of(TIMES, st.integers(-2, 30).map(str))
    else:
        typed = JUNK
    return st.one_of(typed, typed, JUNK)


@st.composite
def arguments(draw: st.DrawFn, group: str, name: str, files: Files) -> list[str]:
    command = command_of(group, name)
    long_running = (group, name) in LONG_RUNNING
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            if param.name in ("realtime",):  # the demo on the wall clock: 87 s by design
                continue
            if param.is_flag:
                if draw(st.booleans()):
                    args.append(param.opts[0])
                continue
            if param.name == "db" and long_running:
                args += [param.opts[0], draw(value(param, files, group, long_running))]
                continue
            for _ in range(draw(st.integers(0, 2 if param.multiple else 1))):
                args += [param.opts[0], draw(value(param, files, group, long_running))]
        elif isinstance(param, click.Argument):
            count = draw(st.integers(0, 2)) if param.nargs == -1 else draw(
                st.sampled_from([1, 1, 1, 0]))
            args += [draw(value(param, files, group, long_running)) for _ in range(count)]
    if draw(st.integers(0, 9)) == 0:  # now and then something unknown
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(
            ["--nope", "-x", "extra", "--", "--db"])))
    return args


@pytest.mark.parametrize(("group", "name"), commands(),
                         ids=[g if g == n else f"{g}-{n}" for g, n in commands()])
def test_generated_arguments_never_end_in_a_traceback(
    files: Files, group: str, name: str
) -> None:
    prefix = [group] if group == name else [group, name]
    long_running = (group, name) in LONG_RUNNING
    # Long-running commands get a database URL they cannot serve either.
    env: dict[str, str | None] = {
        **KEYS, "CLARA_ES_DATABASE_URL": f"sqlite:///{files.no_folder}"
        if long_running else f"sqlite:///{files.good}",
    }

    @given(args=arguments(group, name, files))
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(args: list[str]) -> None:
        ran = clara_es(*prefix, *args, env=env, cwd=files.folder)
        check(ran, [*prefix, *args])

    fuzz()


def check(ran: Ran, argv: list[str]) -> None:
    said = f"clara-es {argv!r}: exit {ran.returncode}\n{ran.stderr}"
    assert ran.returncode in (0, 1, 2), said
    assert "Traceback" not in ran.stderr + ran.stdout, said
    if ran.returncode == 2:
        lines = [line for line in ran.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("clara-es: error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], said
