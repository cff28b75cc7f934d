"""The client process of the partition test: `clara_es.client` over HTTP, with a simulated LiveKit
room whose connection is a real TCP connection to the service's host, so it fails while the
link is cut.

    python -m tests.support.partitioned_client URL TOKEN OUTBOX OUTAGES

It starts a session, connects, and then, OUTAGES times: watches the room (a heartbeat every
0.2 s), reports the drop when the heartbeat fails and follows the schedule (1, 2, 4, 8, 16 s)
until it reconnects or fails. Every change of what the user sees, and of how many facts wait in
the outbox, is one JSON line on stdout. It exits once the session's outcome is decided and the
outbox is empty.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from clara_es.client import Client, HttpTransport
from clara_es.domain import ConnectionState, SystemClock, UIState

HEARTBEAT = 0.2
CONNECT_TIMEOUT = 0.5


class SimulatedRoom:
    """A LiveKit room stand-in: connected while a TCP connection to the service's port opens."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)

    def try_connect(self, attempt: int = 0) -> str | None:
        try:
            socket.create_connection(self.address, CONNECT_TIMEOUT).close()
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return None


class Lines:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def say(self, **fields: Any) -> None:
        with self.lock:
            print(json.dumps({"at": time.time(), **fields}), flush=True)


def main(url: str, token: str, outbox: str, outages: int) -> None:
    lines = Lines()
    parts = urlsplit(url)
    room = SimulatedRoom(parts.hostname or "", parts.port or 80)
    clock = SystemClock()
    link = HttpTransport(url, token, retries=0, timeout=3.0)
    client = Client.start(link, outbox, clock, "room-1", "alice")

    def shown(state: UIState) -> None:
        lines.say(status_text=state.status_text, start_enabled=state.start_enabled,
                  state=str(state.connection_state), attempt=state.attempt)

    client.listeners.append(shown)
    lines.say(session_id=str(client.session_id))
    client.start_flushing(every=0.5)
    done = threading.Event()
    watcher = threading.Thread(target=watch_outbox, args=(client, lines, done), daemon=True)
    watcher.start()

    client.connect()
    error = room.try_connect()
    if error is not None:
        raise SystemExit(f"the room did not connect at the start: {error}")
    client.connected()
    for _ in range(outages):
        while room.try_connect() is None:  # the heartbeat
            time.sleep(HEARTBEAT)
        client.disconnected("network unreachable")
        state = client.follow(clock.sleep_until, room.try_connect)
        if state.connection_state != ConnectionState.CONNECTED:
            break
    while client.pending():
        time.sleep(0.1)
    done.set()
    watcher.join()
    client.close()
    link.close()
    lines.say(finished=True)


def watch_outbox(client: Client, lines: Lines, done: threading.Event) -> None:
    """One line each time the number of undelivered facts changes."""
    last = -1
    while not done.is_set():
        pending = len(client.pending())
        if pending != last:
            lines.say(pending=pending)
            last = pending
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
