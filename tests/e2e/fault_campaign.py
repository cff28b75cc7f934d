"""The fault campaign: `clara-es serve` under HTTP load, killed with SIGKILL at random moments
and started again on the same store; afterwards every acknowledged command's event is in its
stream, `replay --verify --all` passes and the views equal their rebuild.

    python -m tests.e2e.fault_campaign --db /tmp/campaign.db --kills 24 --seed 1

A short version runs in the tests (tests/e2e/test_fault_campaign.py). Load goes only to the
loopback address of the server this script starts; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from clara_es.adapters.store import Store
from clara_es.http.auth import Role, mint
from tests.support.campaign_checks import lost, views_equal_rebuild

KEY, SECRET = "campaign-key", "campaign-secret-that-is-long-enough-for-hs256"
ROOM = "campaign"


@dataclass
class Figures:
    kills: int = 0
    acknowledged: int = 0
    refused: int = 0
    unanswered: int = 0
    lost: int = 0
    restart_s: list[float] = field(default_factory=list)
    verified: bool = False
    views_equal_rebuild: bool = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(db: Path) -> dict[str, str]:
    return {**os.environ, "CLARA_ES_DATABASE_URL": f"sqlite:///{db}",
            "CLARA_ES_LIVEKIT_API_KEY": KEY, "CLARA_ES_LIVEKIT_API_SECRET": SECRET,
            "CLARA_ES_LOG_LEVEL": "warning"}


def start(db: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "clara_es", "serve", "--port", str(port)],
                            env=env(db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = began + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, time.monotonic() - began
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("serve did not answer /healthz within 120 s")


def load(url: str, rng: random.Random, seconds: float, figures: Figures,
         acknowledged: dict[str, int]) -> None:
    """Sessions started and driven through connect/disconnect until `seconds` pass; each
    answered command's version is remembered."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=5) as http:
        while time.monotonic() < deadline:
            participant = f"user-{rng.randrange(10**6)}"
            headers = {"Authorization": "Bearer " + mint(KEY, SECRET, Role.CLIENT, participant,
                                                         ROOM)}
            steps = [("", {"room": ROOM, "participant": participant}),
                     ("connect", {}), ("connected", {}), ("disconnected", {"reason": "drop"})]
            session_id = ""
            for route, body in steps:
                path = "/api/sessions" + (f"/{session_id}/{route}" if route else "")
                try:
                    response = http.post(path, json=body, headers=headers)
                except httpx.HTTPError:
                    figures.unanswered += 1
                    return  # the server is gone: the kill came
                if response.status_code in (200, 201):
                    figures.acknowledged += 1
                    state = response.json()
                    session_id = state["session_id"]
                    acknowledged[session_id] = max(acknowledged.get(session_id, 0),
                                                   state["version"])
                else:
                    figures.refused += 1
                    break
                if time.monotonic() >= deadline:
                    return


def _settle(url: str, seconds: float = 120) -> None:
    """Wait until /readyz reports every view caught up with the log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        if ready["projection_lag"] and not any(ready["projection_lag"].values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the views did not catch up within {seconds} s")


def clara_es(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clara_es", *args], env=env(db),
                          capture_output=True, text=True, timeout=600, check=False)


def campaign(db: Path, kills: int, seed: int, load_s: float = 2.0) -> Figures:
    rng = random.Random(seed)
    figures = Figures()
    acknowledged: dict[str, int] = {}
    port = free_port()
    proc, _ = start(db, port)
    try:
        for _ in range(kills):
            load(f"http://127.0.0.1:{port}", rng, rng.uniform(0.2, load_s), figures,
                 acknowledged)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            figures.kills += 1
            proc, took = start(db, port)
            figures.restart_s.append(round(took, 3))
        load(f"http://127.0.0.1:{port}", rng, load_s, figures, acknowledged)
        _settle(f"http://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    figures.lost = lost(Store.sqlite(db), acknowledged)
    figures.verified = clara_es(db, "replay", "--verify", "--all").returncode == 0
    figures.views_equal_rebuild = views_equal_rebuild(lambda *args: clara_es(db, *args))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a new SQLite file")
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load-s", type=float, default=2.0)
    args = parser.parse_args()
    figures = campaign(args.db, args.kills, args.seed, args.load_s)
    print(json.dumps(figures.__dict__, indent=2))
    sys.exit(0 if figures.lost == 0 and figures.verified and figures.views_equal_rebuild else 1)


if __name__ == "__main__":
    main()
