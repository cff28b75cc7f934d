"""Every command that opens the store, against every store fault a user meets: one line
starting `clara-es: error:`, exit status 2, and not a byte or a file of the store changed.

The table of what each command prints for each fault is docs/cli-faults.md; this module
checks it and rewrites it with CLARA_ES_WRITE_DOCS=1.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from clara_es.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli-faults.md"
SESSION = "6f1c2b4e-7d5c-4b1e-9a53-2c8a0e4f1d11"
# The commands that read or write the store, with what each needs besides the store.
COMMANDS: list[tuple[str, ...]] = [
    ("sessions",), ("status", SESSION), ("stats",), ("history", SESSION),
    ("history", "--room", "r"), ("replay", SESSION), ("replay", "--verify", "--all"),
    ("races",), ("export", SESSION), ("import", "{export}"), ("demo",), ("run",),
    ("serve",), ("agent", "--room", "r"), ("db", "upgrade"), ("projections", "status"),
    ("projections", "rebuild"), ("projections", "run"),
]
# A command that missed its fault (and runs until stopped) is stopped after this long.
PATIENCE_S = 60
FAULTS = {
    "corrupt file": "a text file where the store should be",
    "missing file": "a store in a folder that does not exist",
    "read-only folder": "a good store on a read-only file system",
    "full disk": "a good store on a full file system",
    "unreachable PostgreSQL": "CLARA_ES_DATABASE_URL on a closed loopback port",
}


@dataclass(frozen=True)
class Outcome:
    code: int | str | None
    stdout: str
    stderr: str
    unchanged: bool


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hung(Exception):
    """The command was still running after PATIENCE_S."""


def invoke(args: list[str]) -> int | str | None:
    """`clara-es ARGS` in this process, its handlers for SIGINT/SIGTERM put back after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}

    def hung(_signum: int, _frame: object) -> None:
        raise Hung(f"still running after {PATIENCE_S} s")

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(PATIENCE_S)
    try:
        main(args)
    except SystemExit as exit_:
        return exit_.code
    except Hung as exc:
        return str(exc)
    finally:
        signal.alarm(0)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    return 0


def mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


def unmount(folder: Path) -> None:
    # Lazily: a command that failed may have left a connection open in this process.
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.fixture(scope="module")
def sweep(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[tuple[str, str], Outcome], Path]]:
    root = tmp_path_factory.mktemp("faults")
    good, export = root / "good" / "store.db", root / "incident.jsonl"
    good.parent.mkdir()
    # Made apart, so that no connection of this process holds the good store open.
    env = {k: v for k, v in os.environ.items() if k != "CLARA_ES_DATABASE_URL"}
    for args in (["demo", "--db", str(good)],
                 ["export", SESSION, "--db", str(good), "-o", str(export)]):
        args = [a.replace(SESSION, _first_session(good)) if good.exists() else a for a in args]
        done = subprocess.run([sys.executable, "-m", "clara_es", *args], env=env, timeout=300,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    stores: dict[str, Path] = {}
    (root / "corrupt").mkdir()
    stores["corrupt file"] = root / "corrupt" / "x.db"
    stores["corrupt file"].write_text("these are my notes, not a database\n")
    stores["missing file"] = root / "absent" / "x.db"
    mounts = []
    results: dict[tuple[str, str], Outcome] = {}
    try:
        if os.geteuid() == 0 and mount_tmpfs(root / "ro", "4m"):
            mounts.append(root / "ro")
            for f in good.parent.glob("*.db"):
                shutil.copy(f, root / "ro")
            subprocess.run(["mount", "-o", "remount,ro", str(root / "ro")], check=True)
            stores["read-only folder"] = root / "ro" / good.name
        if os.geteuid() == 0 and mount_tmpfs(root / "full", "1m"):
            mounts.append(root / "full")
            for f in good.parent.glob("*.db"):
                shutil.copy(f, root / "full")
            _fill(root / "full")
            stores["full disk"] = root / "full" / good.name
        for fault in FAULTS:
            for command in COMMANDS:
                results[(fault, " ".join(command))] = _run(fault, command, stores, export, root)
    finally:
        for folder in mounts:
            unmount(folder)
    yield results, root


def _first_session(store: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(store)
    try:
        (originator,) = conn.execute("SELECT originator_id FROM stored_events LIMIT 1").fetchone()
    finally:
        conn.close()
    return str(originator)


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _run(
    fault: str, command: tuple[str, ...], stores: dict[str, Path], export: Path, root: Path
) -> Outcome:
    args = [a.replace("{export}", str(export)) for a in command]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLARA_ES_LIVEKIT_URL", "ws://127.0.0.1:9")
        env.setenv("CLARA_ES_LIVEKIT_API_KEY", "devkey")
        env.setenv("CLARA_ES_LIVEKIT_API_SECRET", "a-secret-of-32-characters-or-more")
        if fault == "unreachable PostgreSQL":
            env.setenv("CLARA_ES_DATABASE_URL",
                       f"postgresql://postgres@127.0.0.1:{closed_port()}/test")
        elif fault in stores:
            env.delenv("CLARA_ES_DATABASE_URL", raising=False)
            args += ["--db", str(stores[fault])]
        else:
            return Outcome(None, "", "not run: cannot mount a tmpfs here", True)
        before = snapshot(root)
        captured = _captured(args)
        return Outcome(captured[0], captured[1], captured[2], snapshot(root) == before)


def _captured(args: list[str]) -> tuple[int | str | None, str, str]:
    """Output as a separate process would print it: log settings put back after each."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    started = time.monotonic()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = invoke(args)
    finally:
        root.handlers[:], root.level = handlers, level
    if os.environ.get("CLARA_ES_SWEEP_TRACE"):
        print(f"{time.monotonic() - started:6.2f}s {args}", file=sys.__stderr__)
    return code, out.getvalue(), err.getvalue()


def normalised(line: str, root: Path) -> str:
    line = line.replace(str(root), "DIR")
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", re.sub(r'port \d+', "port PORT", line))


CELLS = [(fault, " ".join(command)) for fault in FAULTS for command in COMMANDS]


@pytest.mark.parametrize(("fault", "command"), CELLS)
def test_a_store_fault_is_one_line_exit_2_and_changes_nothing(
    sweep: tuple[dict[tuple[str, str], Outcome], Path], fault: str, command: str
) -> None:
    outcome = sweep[0][(fault, command)]
    if outcome.code is None:
        pytest.skip(outcome.stderr)
    assert outcome.code == 2, outcome.stderr
    assert outcome.stderr.startswith("clara-es: error: ")
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
    assert outcome.stdout == ""
    assert outcome.unchanged


def table(outcomes: dict[tuple[str, str], Outcome], root: Path) -> str:
    lines = [
        "# What each command prints when the store is at fault",
        "",
        "Generated by `tests/integration/test_cli_faults.py` (`CLARA_ES_WRITE_DOCS=1` rewrites",
        "it; the test fails while it differs). Every line below came with exit status 2, and",
        "the store's folder held the same files with the same bytes afterwards. The file",
        "faults give the store as `--db DIR/...`; PostgreSQL's as CLARA_ES_DATABASE_URL.",
        "",
    ]
    for fault, what in FAULTS.items():
        lines += [f"## {fault}: {what}", "", "| command | prints |", "|---|---|"]
        for command in COMMANDS:
            outcome = outcomes[(fault, " ".join(command))]
            text = normalised(outcome.stderr.strip(), root).replace("|", "\\|")
            shown = " ".join(command).replace("{export}", "incident.jsonl")
            lines.append(f"| `clara-es {shown}` | {text} |")
        lines.append("")
    return "\n".join(lines)


def test_the_documented_table_is_what_the_commands_print(
    sweep: tuple[dict[tuple[str, str], Outcome], Path],
) -> None:
    outcomes, root = sweep
    if any(o.code is None for o in outcomes.values()):
        pytest.skip("some faults could not be made here (no tmpfs): the table is not checked")
    text = table(outcomes, root)
    if os.environ.get("CLARA_ES_WRITE_DOCS"):
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/cli-faults.md is stale: rerun with CLARA_ES_WRITE_DOCS=1"
