"""`clara-es agent`: what can be checked without a LiveKit server, through the entry point."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from livekit import api

from clara_es.adapters.livekit.tokens import agent_token
from tests.support.cli_runner import Ran
from tests.support.cli_runner import clara_es as run_cli

LIVEKIT_VARS = ("CLARA_ES_LIVEKIT_URL", "CLARA_ES_LIVEKIT_API_KEY", "CLARA_ES_LIVEKIT_API_SECRET")
KEY, SECRET = "APIclaraTest", "a-secret-of-at-least-32-characters-long"


def clara_es(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    """The command with only the given LiveKit settings, whatever the environment has."""
    return run_cli(*args, env={**dict.fromkeys(LIVEKIT_VARS), **env}, cwd=cwd)


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, LIVEKIT_VARS),
        (
            {"CLARA_ES_LIVEKIT_URL": "ws://127.0.0.1:7880", "CLARA_ES_LIVEKIT_API_KEY": KEY},
            ("CLARA_ES_LIVEKIT_API_SECRET",),
        ),
    ],
)
def test_without_livekit_settings_it_says_which_and_exits_2(
    tmp_path: Path, env: dict[str, str], missing: tuple[str, ...]
) -> None:
    result = clara_es("agent", "--room", "room-1", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("clara-es: error: the agent needs a LiveKit server: set ")
    for name in LIVEKIT_VARS:
        assert (name in result.stderr) == (name in missing)
    assert list(tmp_path.iterdir()) == []  # no database was created


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing option '--room'"),
        (["--room", "  "], "--room needs a room name"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = {"CLARA_ES_LIVEKIT_URL": "ws://127.0.0.1:7880", "CLARA_ES_LIVEKIT_API_KEY": KEY,
           "CLARA_ES_LIVEKIT_API_SECRET": SECRET}
    result = clara_es("agent", *args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("clara-es: error:")
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{closed_loopback_port()}"
    env = {"CLARA_ES_LIVEKIT_URL": url, "CLARA_ES_LIVEKIT_API_KEY": KEY,
           "CLARA_ES_LIVEKIT_API_SECRET": SECRET}
    result = clara_es("agent", "--room", "room-1", "--db", "agent.db", env=env, cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]  # the SDK logs its own retries before
    assert last.startswith(f"clara-es: error: cannot join room 'room-1' at {url}: ")
    assert "Connection refused" in last


def test_the_agent_token_joins_only_its_room_as_an_agent() -> None:
    claims = api.TokenVerifier(KEY, SECRET).verify(
        agent_token(KEY, SECRET, "room-1", "clara-agent")
    )
    assert claims.identity == "clara-agent"
    assert claims.kind == "agent"
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join, claims.video.agent) == ("room-1", True, True)
