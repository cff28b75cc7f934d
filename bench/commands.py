"""Commands per second through VoiceSessions, against a bare eventsourcing save on the same store.

    python -m bench.commands [--sessions 1000] [--json]

For each store (SQLite file; PostgreSQL if reachable) and 1 and 4 concurrent writers, every
session runs the same six commands (start, connect, connected, disconnected, attempt_started,
reconnected). The baseline, in the same process and on the same store, is the least a command
can cost in eventsourcing: read an aggregate, trigger one @event, save it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import Report, arguments, backends, fresh_store
from clara_es.application import VoiceSessions
from clara_es.domain import commands

COMMANDS_PER_SESSION = 6


class Counter(Aggregate):
    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


class Bare(Application[UUID]):
    name = "Bare"


def run_partitioned(writers: int, items: Sequence[Any], work: Callable[[Any], None]) -> float:
    """Split `items` over `writers` threads; return elapsed seconds."""
    chunks = [items[i::writers] for i in range(writers)]
    errors: list[BaseException] = []

    def run(chunk: Sequence[Any]) -> None:
        try:
            for item in chunk:
                work(item)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def bench_sessions(env: dict[str, str], sessions: int, writers: int) -> float:
    app = VoiceSessions(env)
    try:
        def one_session(n: int) -> None:
            start = commands.StartSession(room=f"room-{n}", participant=f"user-{n}")
            sid = app.handle(start).session_id
            app.handle(commands.Connect(), sid)
            app.handle(commands.MarkConnected(), sid)
            app.handle(commands.ReportDisconnected(reason="network"), sid)
            app.handle(commands.StartAttempt(attempt=1), sid)
            app.handle(commands.ReportReconnected(), sid)

        elapsed = run_partitioned(writers, range(sessions), one_session)
    finally:
        app.close()
    return sessions * COMMANDS_PER_SESSION / elapsed


def bench_bare(env: dict[str, str], sessions: int, writers: int) -> float:
    app = Bare(env)
    try:
        def one_counter(_: int) -> None:
            counter = Counter()
            app.save(counter)
            for _ in range(COMMANDS_PER_SESSION - 1):
                counter = app.repository.get(counter.id)
                counter.increment()
                app.save(counter)

        elapsed = run_partitioned(writers, range(sessions), one_counter)
    finally:
        app.close()
    return sessions * COMMANDS_PER_SESSION / elapsed


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv, sessions=1000)
    report = Report(
        "{store:8} writers={writers}"
        "  voice-session commands {commands_per_s:>6}/s"
        "  bare get+save {bare_saves_per_s:>6}/s  ratio {ratio:.2f}",
        args.json,
    )
    for backend in backends():
        for writers in (1, 4):
            with fresh_store(backend) as store:
                env = store.eventsourcing_env()
                bare = bench_bare(env, args.sessions, writers)
                ours = bench_sessions(env, args.sessions, writers)
            report.add(
                store=backend, writers=writers, sessions=args.sessions,
                commands_per_s=round(ours), bare_saves_per_s=round(bare),
                ratio=round(ours / bare, 2),
            )
    report.finish()


if __name__ == "__main__":
    main()
