"""Every command line README.md quotes in a shell block, run as a user would paste it: in bash,
in an empty folder, with `clara-es` on the PATH. A new shell block fails
`test_every_shell_block_of_the_readme_is_run_here` until a test below runs it; a changed line
in a block is run as changed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.waiting import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent


def shell_blocks() -> list[list[str]]:
    """The lines of every ```sh block, in order."""
    text = README.read_text()
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def block(first: str) -> list[str]:
    found = [b for b in shell_blocks() if (b[0] + "\n").startswith(first)]
    assert len(found) == 1, f"README.md has {len(found)} shell blocks starting {first!r}"
    return found[0]


def bash(script: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_ES_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def venv_here(folder: Path) -> None:
    """`.venv` in the folder is this test run's environment (what the install line made)."""
    (folder / ".venv").symlink_to(BIN.parent)


# The first line of each shell block -> the test below that runs the block.
RUN_BY = {
    "python3 -m venv .venv && .venv/bin/pip install -q . &&": "test_try_it",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' &&": "test_the_suite_command",
    "clara-es demo --db demo.db --json > demo.json      #": "test_the_queries_block",
    "export CLARA_ES_LIVEKIT_URL=ws://localhost:7880": "test_the_agent_block",
    "export CLARA_ES_LIVEKIT_API_KEY=devkey CLARA_ES_LIVEKIT_API_SECRET=": "test_the_serve_block",
    "clara-es demo --db demo.db --json > demo.json\n": "test_the_replay_block",
}


def test_every_shell_block_of_the_readme_is_run_here() -> None:
    blocks = shell_blocks()
    assert len(blocks) == len(RUN_BY)
    for lines in blocks:
        first = lines[0] + "\n"
        runners = [name for start, name in RUN_BY.items() if first.startswith(start)]
        assert len(runners) == 1, f"no test runs the README block starting {lines[0]!r}"
        assert callable(globals()[runners[0]])


def install_line_rest(line: str, tail: str) -> str:
    """The part of an install-then-run line after the install (the test's venv is installed)."""
    prefix, _, rest = line.partition(" && .venv/bin/pip install -q ")
    assert prefix == "python3 -m venv .venv" and rest.split(" && ", 1)[1] == tail, line
    return tail


def test_try_it(tmp_path: Path) -> None:
    (line,) = block(next(k for k, v in RUN_BY.items() if v == "test_try_it"))
    venv_here(tmp_path)
    ran = bash(install_line_rest(line, ".venv/bin/clara-es demo"), tmp_path)
    assert ran.returncode == 0, ran.stderr
    checks = [s.split()[:2] for s in ran.stdout.splitlines() if s.strip()[:4] in ("PASS", "FAIL")]
    assert checks == [["PASS", f"{n}."] for n in range(1, 9)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".venv"]  # the store was thrown away


def test_the_suite_command(tmp_path: Path) -> None:
    (line,) = block(next(k for k, v in RUN_BY.items() if v == "test_the_suite_command"))
    install_line_rest(line, ".venv/bin/pytest")
    # This run is that command; here it only collects, from the checkout, all three folders.
    ran = subprocess.run([str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=README.parent, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-2000:]
    for folder in ("tests/unit/", "tests/integration/", "tests/e2e/"):
        assert folder in ran.stdout


def test_the_queries_block(tmp_path: Path) -> None:
    lines = block(next(k for k, v in RUN_BY.items() if v == "test_the_queries_block"))
    ran = bash("\n".join(lines), tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert '"connection_state": "failed"' in ran.stdout
    assert "recovery rate" in ran.stdout and "ReconnectScheduled" in ran.stdout
    assert ran.stderr == ""  # the demo brought the views up to date: nothing is behind


def test_the_replay_block(tmp_path: Path) -> None:
    lines = block(next(k for k, v in RUN_BY.items() if v == "test_the_replay_block"))
    simulate = "clara-es simulate --sessions 1000 --seed 7"
    assert lines[-1] == simulate
    # The same simulation on fewer sessions: 1000 take minutes (the benchmarks run them).
    script = "\n".join([*lines[:-1], simulate.replace("1000", "40")])
    ran = bash(script, tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "violations: 0" in ran.stdout
    assert (tmp_path / "incident.jsonl").exists() and (tmp_path / "laptop.db").exists()


def test_the_agent_block(tmp_path: Path) -> None:
    lines = block(next(k for k, v in RUN_BY.items() if v == "test_the_agent_block"))
    ran = bash("\n".join(lines), tmp_path)
    # No LiveKit server runs here: the agent says so in one last line and exits 2.
    assert ran.returncode == 2, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("clara-es: error: cannot join room 'demo' at ws://localhost:7880")


def test_the_serve_block(tmp_path: Path) -> None:
    export, serve, mint = block(next(k for k, v in RUN_BY.items() if v == "test_the_serve_block"))
    assert serve.split("#")[0].strip() == "clara-es serve"
    port = free_port()
    # Only the port differs from the README's (8080 may be taken on a shared machine).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_ES_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    server = subprocess.Popen(["bash", "-c", f"{export}\nexec clara-es serve --port {port}"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), timeout=60, what="serve to answer")
        ran = bash(f"{export}\n{mint}", tmp_path)
        assert ran.returncode == 0, ran.stderr
        token = ran.stdout.strip()
        started = httpx.post(f"{base}/api/sessions", json={"room": "demo", "participant": "alice"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert started.status_code == 201, started.text
        assert httpx.get(f"{base}/", timeout=30).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert (tmp_path / "clara-es.db").exists()  # CLARA_ES_DATABASE_URL's default, here


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
