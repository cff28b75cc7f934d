"""`clara-es ARGS...` run in this process, as the entry point runs it.

The entry point's `clara_es.cli.invoke` turns errors into one line on stderr and an exit
status (`main` only leaves the process with it); click's CliRunner isolation gives it its own
stdout, stderr and environment. A test needs a subprocess only for what a process alone
shows: signals, SIGKILL, a real port.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from clara_es.cli import invoke
from tests.support import process_logging


@dataclass(frozen=True)
class Ran:
    """What a user sees of one command: its exit status and its two streams."""

    returncode: int
    stdout: str
    stderr: str


def clara_es(
    *args: str, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
) -> Ran:
    """Run one command; `env` overrides (None removes) variables for its duration. Like a
    process that ends, it leaves no signal handlers and no logging configured behind."""
    streams = CliRunner().isolation(env=env)
    with (
        _kept_signal_handlers(), process_logging.kept(), _working_directory(cwd),
        streams as (out, err, *_),
    ):
        try:
            code = invoke(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


@contextmanager
def _kept_signal_handlers() -> Iterator[None]:
    """Long-running commands install SIGINT/SIGTERM handlers; the test process keeps its own."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@contextmanager
def _working_directory(path: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
