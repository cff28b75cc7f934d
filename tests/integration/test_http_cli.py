"""`clara-es token`, and `clara-es serve` refusing to start: the entry point, in process."""

from __future__ import annotations

from pathlib import Path

import pytest
from livekit import api

from tests.support.cli_runner import clara_es
from tests.support.http_service import API_KEY, API_SECRET

KEYS = {"CLARA_ES_LIVEKIT_API_KEY": API_KEY, "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET}


def test_token_mints_a_verifiable_token_for_each_role() -> None:
    client = clara_es("token", "--role", "client", "--identity", "alice", "--room", "r1", env=KEYS)
    assert client.returncode == 0, client.stderr
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(client.stdout.strip())
    assert (claims.identity, claims.video.room, claims.video.room_join) == ("alice", "r1", True)
    agent = clara_es("token", "--role", "agent", "--identity", "a", "--room", "r1", env=KEYS)
    assert api.TokenVerifier(API_KEY, API_SECRET).verify(agent.stdout.strip()).kind == "agent"
    reader = clara_es("token", "--role", "read", "--identity", "dash", "--json", env=KEYS)
    assert '"role": "read"' in reader.stdout


def test_token_errors_are_one_line() -> None:
    no_room = clara_es("token", "--role", "client", "--identity", "alice", env=KEYS)
    assert no_room.returncode == 2
    assert no_room.stderr.strip() == "clara-es: error: a client token needs a room (--room)"
    no_keys = clara_es("token", "--role", "read", "--identity", "d",
                       env={"CLARA_ES_LIVEKIT_API_KEY": "", "CLARA_ES_LIVEKIT_API_SECRET": ""})
    assert no_keys.returncode == 2
    assert "CLARA_ES_LIVEKIT_API_KEY" in no_keys.stderr
    assert len(no_keys.stderr.strip().splitlines()) == 1


def test_serve_refuses_to_start_without_keys(tmp_path: Path) -> None:
    result = clara_es("serve", "--db", str(tmp_path / "x.db"),
                      env={"CLARA_ES_LIVEKIT_API_KEY": "", "CLARA_ES_LIVEKIT_API_SECRET": ""})
    assert result.returncode == 2
    assert "CLARA_ES_LIVEKIT_API_SECRET" in result.stderr


@pytest.fixture(autouse=True)
def _no_inherited_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
