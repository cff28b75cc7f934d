"""Live feeds under load: how late each change reaches the browser, with `--feeds` SSE clients.

    python -m bench.feeds [--feeds 500] [--rates 100 200 400] [--seconds 3] [--clients 2]
                          [--only sqlite|postgres] [--json]

For each store, `clara-es serve` runs in its own process (as in bench/http.py) and
`--feeds` sessions are connected; one feed per session is opened by `--clients` client
processes (bench/sse_client.py: raw sockets, no HTTP library, each measuring its own event
loop's lag, so that the figure is the server's and the clients' lag is stated beside it).
Then phases of `--seconds` each, every session cycling `disconnected` (2 events),
`attempt-started`, `reconnected` (1 each), the three commands of a session one after the other
and the sessions in turn:
- `open N`: commands sent over HTTP at N commands/s on a fixed schedule (open loop: a late
  answer does not delay the next command), 16 keep-alive connections (a session always on the
  same one, so its commands stay in order);
- `closed`: 16 connections each sending its next command as soon as the last one answered
  (saturated: the command's own queueing and commit are part of the latency);
- `store N`: another process (this one) appends the same commands straight to the store at N
  commands/s: the feeds learn of them from the store (PostgreSQL: LISTEN/NOTIFY), not from
  the serving process's own commands.
Each event's latency is given from two points:
- `decision`: the event's `updated_at`, the server's clock when the command was decided,
  just before the append: an upper bound of append-to-browser;
- `answer`: when the sender had the command's answer (HTTP: the response read by the sender;
  `store`: the append's commit returned), which comes after the commit: a lower bound (it can
  be negative: a feed may be written before the command's response).
Every feed must receive every version of its session in order, exactly once
(`every_change_seen`). Also per phase: the command's round trip, the server's CPU, the clients'
and the sender's loop lag, the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from bench.common import backends, fresh_store
from bench.http import AGENT, READER, Server, cpu_seconds, setup_sessions
from clara_es.application import VoiceSessions
from clara_es.domain import SystemClock, commands
from projections import db as views_db

QUICK_ARGS = ["--seconds", "2", "--rates", "200"]
START_VERSION = 3  # SessionStarted, Connecting, Connected: a feed opens on it
CONNECTIONS = 16
CYCLE = ((b"disconnected", b'{"reason":"bench"}'), (b"attempt-started", b'{"attempt":1}'),
         (b"reconnected", b"{}"))
DIRECT = (commands.ReportDisconnected(reason="bench"), commands.StartAttempt(attempt=1),
          commands.ReportReconnected())


@dataclass
class Sent:
    """One command: which session, the versions it appended, when it was answered."""
    phase: str
    session: int
    sent: float
    answered: float = 0.0
    first: int = 0
    last: int = 0


@dataclass
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    cpu_s: float = 0.0
    load: float = 0.0
    sender_lag_ms: list[float] = field(default_factory=list)


class Poster:
    """One keep-alive HTTP/1.1 connection sending commands (no HTTP library: the sender must
    not be what is measured)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.token = AGENT["Authorization"].encode()

    async def open(self) -> Poster:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: bench\r\nAuthorization: %s\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (path, self.token, len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return int(head.split(b" ", 2)[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class Sender:
    """Cycles the sessions through outages: command k goes to session (k // 3) mod n."""

    def __init__(self, ids: list[UUID]) -> None:
        self.ids = ids
        self.k = 0
        self.steps = [0] * len(ids)  # each session's next command in CYCLE
        self.version = [START_VERSION] * len(ids)
        self.sent: list[Sent] = []
        self.refused = 0
        self.mine: dict[int, int] = defaultdict(int)

    def next(self, only: tuple[int, int] | None = None) -> tuple[int, int]:
        """The next session and its command; `only` (c, n): among sessions s with s % n == c."""
        k, self.k = self.k, self.k + 1
        if only is None:
            session = (k // 3) % len(self.ids)
        else:
            c, n = only
            mine = range(c, len(self.ids), n)
            session = mine[(self.mine[c] // 3) % len(mine)]
            self.mine[c] += 1
        step = self.steps[session]
        self.steps[session] = (step + 1) % 3
        return session, step

    def record(self, sent: Sent, version: int) -> None:
        sent.first, sent.last = self.version[sent.session] + 1, version
        self.version[sent.session] = version
        self.sent.append(sent)

    async def http(self, posters: list[Poster], phase: str, rate: float | None,
                   seconds: float) -> None:
        queues: list[asyncio.Queue[tuple[int, int] | None]] = [asyncio.Queue() for _ in posters]

        async def connection(poster: Poster, queue: asyncio.Queue[tuple[int, int] | None]) -> None:
            while (job := await queue.get()) is not None:
                await self.one(poster, phase, *job)

        async def closed(poster: Poster, c: int) -> None:
            while time.monotonic() < stop:
                await self.one(poster, phase, *self.next((c, len(posters))))

        stop = time.monotonic() + seconds
        if rate is None:
            # Closed loop: each connection takes the commands of its own sessions in turn.
            await asyncio.gather(*(closed(p, c) for c, p in enumerate(posters)))
            return
        workers = [asyncio.create_task(connection(p, q))
                   for p, q in zip(posters, queues, strict=True)]
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            session, step = self.next()
            queues[session % len(posters)].put_nowait((session, step))
        for q in queues:
            q.put_nowait(None)
        await asyncio.gather(*workers)

    async def one(self, poster: Poster, phase: str, session: int, step: int) -> None:
        name, body = CYCLE[step]
        sent = Sent(phase, session, time.time())
        status, answer = await poster.post(
            b"/api/sessions/%s/%s" % (str(self.ids[session]).encode(), name), body)
        sent.answered = time.time()
        if status != 200:
            self.refused += 1
            return
        self.record(sent, json.loads(answer)["version"])

    def direct(self, app: VoiceSessions, phase: str, rate: float, seconds: float) -> None:
        """Appends straight to the store from this process, on a fixed schedule."""
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            session, step = self.next()
            sent = Sent(phase, session, time.time())
            state = app.handle(DIRECT[step], self.ids[session])
            sent.answered = time.time()
            self.record(sent, state.version)


class Clients:
    """The client processes, each following its share of the feeds."""

    def __init__(self, url: str, ids: list[UUID], processes: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        token = READER["Authorization"].removeprefix("Bearer ")
        self.shares = [list(range(c, len(ids), processes)) for c in range(processes)]
        command = [sys.executable, "-m", "bench.sse_client", host, port, token]
        self.procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True) for _ in range(processes)]
        for proc, share in zip(self.procs, self.shares, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps([str(ids[i]) for i in share]) + "\n")
            proc.stdin.flush()
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "open":
                raise RuntimeError("a client process did not open its feeds")

    def stop(self, final: list[int]
             ) -> tuple[dict[tuple[int, int], list[tuple[float, float]]], list[list[float]]]:
        """Every event received, by (session, version): [(receipt, updated_at)], and the lag,
        once each feed received its session's `final` version (or a client's deadline)."""
        received: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
        lag: list[list[float]] = []
        for proc, share in zip(self.procs, self.shares, strict=True):
            out, _ = proc.communicate(json.dumps([final[i] for i in share]) + "\n", timeout=90)
            result = json.loads(out)
            for index, version, at, updated in result["events"]:
                received[(share[index], version)].append((at, updated))
            lag += result["lag"]
        return received, lag


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def figures(phase: Phase, sent: list[Sent], received: dict[tuple[int, int], list[Any]],
            lag: list[list[float]], seconds: float) -> dict[str, Any]:
    decision, answer, round_trip = [], [], []
    for s in sent:
        round_trip.append(1000 * (s.answered - s.sent))
        for version in range(s.first, s.last + 1):
            for at, updated in received.get((s.session, version), []):
                decision.append(1000 * (at - updated))
                answer.append(1000 * (at - s.answered))
    client_lag = [ms for t, ms in lag if phase.started <= t <= phase.ended]
    r = {
        "phase": phase.name, "commands": len(sent), "events": len(decision),
        "events_per_s": round(len(decision) / seconds),
        "decision_p50_ms": percentile(decision, 0.5),
        "decision_p99_ms": percentile(decision, 0.99),
        "answer_p50_ms": percentile(answer, 0.5), "answer_p99_ms": percentile(answer, 0.99),
        "command_p50_ms": percentile(round_trip, 0.5),
        "command_p99_ms": percentile(round_trip, 0.99),
        "client_lag_p99_ms": percentile(client_lag, 0.99),
        "client_lag_max_ms": max(client_lag or [0]),
        "sender_lag_p99_ms": percentile(phase.sender_lag_ms, 0.99),
        "server_cpu_per_s": phase.cpu_s / seconds, "load_average": phase.load,
    }
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}


async def probe_lag(samples: list[float], stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(1000 * (time.perf_counter() - start - 0.005))


async def http_phase(sender: Sender, server: Server, phase: Phase, rate: float | None,
                     seconds: float) -> None:
    posters = [await Poster("127.0.0.1", server.port).open() for _ in range(CONNECTIONS)]
    done = threading.Event()
    probe = asyncio.create_task(probe_lag(phase.sender_lag_ms, done))
    await sender.http(posters, phase.name, rate, seconds)
    done.set()
    await probe
    for p in posters:
        p.close()


def bench(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(backend) as store:
        views_db.upgrade(store)
        app = VoiceSessions(store.eventsourcing_env(), clock=SystemClock())
        ids = setup_sessions(app, args.feeds)
        server = Server(store)
        phases: list[Phase] = []
        try:
            clients = Clients(server.url, ids, args.clients)
            sender = Sender(ids)
            plan: list[tuple[str, str, float | None]] = [
                *((f"open {r:g}", "http", r) for r in args.rates), ("closed", "http", None),
                *((f"store {r:g}", "store", r) for r in args.store_rates)]
            for name, how, rate in plan:
                phase = Phase(name, started=time.time())
                cpu = cpu_seconds(server.process.pid)
                if how == "http":
                    asyncio.run(http_phase(sender, server, phase, rate, args.seconds))
                else:
                    assert rate is not None
                    sender.direct(app, name, rate, args.seconds)
                time.sleep(0.5)  # the last changes reach their feeds
                phase.ended = time.time()
                phase.cpu_s = cpu_seconds(server.process.pid) - cpu
                phase.load = os.getloadavg()[0]
                phases.append(phase)
            received, lag = clients.stop(sender.version)
        finally:
            server.stop()
            app.close()
    # The process manager inside `serve` may append too (a reconnection timer that fell due
    # before the bench's next command): those versions must reach the feeds as well.
    last = [max([sender.version[s], *(v for (t, v) in received if t == s)])
            for s in range(len(ids))]
    expected = {(s, v) for s in range(len(ids)) for v in range(START_VERSION, last[s] + 1)}
    missing = len(expected - received.keys())
    extra = sum(last[s] - sender.version[s] for s in range(len(ids)))
    twice = sum(len(times) - 1 for times in received.values())
    by_phase: dict[str, list[Sent]] = defaultdict(list)
    for s in sender.sent:
        by_phase[s.phase].append(s)
    return {"backend": backend, "feeds": len(ids), "client_processes": args.clients,
            "every_change_seen": missing == twice == 0, "missing": missing,
            "duplicates": twice, "by_process_manager": extra, "refused": sender.refused,
            "phases": [figures(p, by_phase[p.name], received, lag, args.seconds) for p in phases]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", type=float, nargs="*", default=[100, 200, 400],
                        help="open-loop HTTP commands per second, one phase each")
    parser.add_argument("--store-rates", type=float, nargs="*", default=[200],
                        help="commands per second appended by another process, one phase each")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [bench(b, args) for b in backends() if args.only in (None, b)]
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))
        return
    for row in rows:
        print(f"{row['backend']}: {row['feeds']} feeds, every change seen: "
              f"{row['every_change_seen']} (missing {row['missing']}, duplicates "
              f"{row['duplicates']}), by the process manager: {row['by_process_manager']}, "
              f"refused: {row['refused']}")
        for p in row["phases"]:
            print("  " + ", ".join(f"{k} {v}" for k, v in p.items()))


if __name__ == "__main__":
    main()
