"""A real partition: `clara-es serve` in one network namespace, the Python client in another,
the link between them cut for 5 s and then for 40 s.

The client's room is simulated (a TCP connection to the service's host, tests/support/
partitioned_client.py), so its attempts fail exactly while the link is down; its reports travel
over the real link, so the service hears of each outage only once the link is back. Needs root
(tests/support/netns.py): skips elsewhere, saying why; with CI=true it must run.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import pytest

from clara_es.client import Outbox
from clara_es.domain import FAILURE_TEXT
from clara_es.domain.commands import ROUTES
from clara_es.http.auth import Role
from tests.support.http_service import token
from tests.support.netns import Partition, partition, require_namespaces
from tests.support.outages import at, attempt_delays, first_of_key, signals_by_key
from tests.support.served import served

ROOT = Path(__file__).resolve().parents[2]
PORT = 8080  # the service's namespace is new: nothing else listens in it
SHORT, LONG = 5, 40
RECONNECTING = [f"Reconnecting... (attempt {n} of 5)" for n in range(1, 6)]


@pytest.fixture
def net() -> Iterator[Partition]:
    require_namespaces()
    with partition() as part:
        yield part


class Output:
    """The client's JSON lines, each with when the test received it (time.monotonic())."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for text in stream:
            line = json.loads(text)
            with self.lock:
                self.lines.append((time.monotonic(), line))

    def between(self, start: float, end: float = float("inf")) -> list[dict[str, Any]]:
        with self.lock:
            return [line for t, line in self.lines if start <= t < end]

    def wait(self, match: Callable[[dict[str, Any]], bool], since: float = 0.0,
             timeout: float = 60.0, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.between(since):
                if match(line):
                    return line
            time.sleep(0.05)
        pytest.fail(f"the client never showed {what or match} in {timeout} s; "
                    f"it showed {self.between(since)}")


def shown(lines: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """What the user saw, in order: (status text, Start enabled), repeats collapsed."""
    seen: list[tuple[str, bool]] = []
    for line in lines:
        if "status_text" in line and (not seen or seen[-1][0] != line["status_text"]):
            seen.append((line["status_text"], line["start_enabled"]))
    return seen


def cut(net: Partition, seconds: float) -> tuple[float, float]:
    """Cut the link for `seconds` (the outage's length is the scenario: it is waited out)."""
    began = time.monotonic()
    net.cut()
    time.sleep(seconds)
    ended = time.monotonic()
    net.restore()
    return began, ended


def wait_delivered(outbox: Path, timeout: float = 30.0) -> None:
    """Every fact the client has kept is answered by the service. Read from the outbox itself:
    the client keeps a fact before it shows the state it leads to, so once a state is shown
    this cannot miss its fact (the client's `pending` lines may predate it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(outbox) as db:
            (waiting,) = db.execute(
                "SELECT count(*) FROM facts WHERE delivered_status IS NULL").fetchone()
        if waiting == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"{waiting} facts still undelivered after {timeout} s")


def history(net: Partition, url: str, session_id: str) -> list[dict[str, Any]]:
    """The session's history over HTTP, fetched from the client's side of the restored link."""
    code = ("import httpx, sys\n"
            "r = httpx.get(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]},"
            " timeout=10)\nr.raise_for_status()\nprint(r.text)\n")
    text = net.python_in(net.client_ns, code, f"{url}/api/sessions/{session_id}/history",
                         token(Role.CLIENT))
    rows: list[dict[str, Any]] = json.loads(text)
    return rows


def test_outages_of_5_and_40_s_across_a_real_partition(net: Partition, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    with served(tmp_path / "service.db", host=net.service_ip, port=PORT,
                prefix=net.prefix(net.service_ns),
                ready=lambda url: net.reaches(net.service_ip, PORT)) as url:
        with (tmp_path / "client.log").open("w") as errors:
            client = net.run_in(
                net.client_ns,
                [sys.executable, "-m", "tests.support.partitioned_client", url,
                 token(Role.CLIENT), str(outbox), "2"],
                stdout=subprocess.PIPE, stderr=errors, cwd=ROOT,
            )
        try:
            assert client.stdout is not None
            out = Output(client.stdout)
            session_id = out.wait(lambda line: "session_id" in line)["session_id"]
            out.wait(lambda line: line.get("status_text") == "Connected", what="Connected")
            wait_delivered(outbox)

            # 5 s: the schedule's early attempts fail while the link is down, a later one works.
            began, ended = cut(net, SHORT)
            during = out.between(began, ended)
            assert shown(during)[:2] == [(RECONNECTING[0], False), (RECONNECTING[1], False)]
            assert all(not enabled for _, enabled in shown(during))
            assert any(line.get("pending", 0) > 0 for line in during)  # kept, not delivered
            out.wait(lambda line: line.get("status_text") == "Connected", since=ended,
                     timeout=30, what="Connected after the short outage")
            # Before the next cut: the reconnection's own fact too, kept as Connected showed.
            wait_delivered(outbox)

            # 40 s: all five attempts fail; the failure text and Start come before the link does.
            began, ended = cut(net, LONG)
            during = out.between(began, ended)
            assert shown(during) == [*((text, False) for text in RECONNECTING),
                                     (FAILURE_TEXT, True)]
            out.wait(lambda line: line.get("finished") is True, since=ended, timeout=60,
                     what="the long outage delivered")
            assert client.wait(timeout=30) == 0, (tmp_path / "client.log").read_text()
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(timeout=30)

        rows = history(net, url, session_id)
        deadline = time.monotonic() + 30
        while "Failed" not in [r["type"] for r in rows] and time.monotonic() < deadline:
            time.sleep(0.2)  # the history view catches up with the batch
            rows = history(net, url, session_id)

    kept = Outbox(outbox)
    facts = kept.facts(UUID(session_id))
    kept.close()
    assert facts and all(f.delivered_status == 200 for f in facts)
    recorded = signals_by_key(rows)
    for fact in facts:  # every client fact exactly once, at the time it happened
        assert len(recorded.get(fact.idempotency_key, ())) == 1, fact
        row = first_of_key(rows, fact.idempotency_key)
        assert row["cause"]["name"] == ROUTES[fact.type].name
        assert abs(at(row) - fact.occurred_at) < timedelta(seconds=1), (row, fact)
    assert [r["type"] for r in rows].count("Failed") == 1

    outages = split_outages([f.type for f in facts])
    assert outages[0][0] == "disconnected" and outages[0][-1] == "reconnected"
    assert outages[1] == ["disconnected", *["attempt-started", "attempt-failed"] * 5]
    delays = attempt_delays(rows)
    assert [n for n, _, _ in delays][-5:] == [1, 2, 3, 4, 5]
    for attempt, measured, scheduled in delays:
        assert scheduled == 2 ** (attempt - 1)
        # Each batch is corrected by its own measured clock offset (milliseconds of transit).
        assert scheduled - 0.05 <= measured < scheduled + 0.5, (attempt, measured)
    first_drop = next(r for r in rows if r["type"] == "Disconnected")
    assert datetime.fromisoformat(first_drop["cause"]["recorded_at"]) - at(first_drop) > \
        timedelta(seconds=SHORT - 2)  # the service heard of it only after the link was back


def split_outages(types: list[str]) -> list[list[str]]:
    outages: list[list[str]] = []
    for kind in types:
        if kind == "disconnected":
            outages.append([])
        if outages:
            outages[-1].append(kind)
    return outages
