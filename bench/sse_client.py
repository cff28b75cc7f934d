"""A light live-feed client for bench/feeds.py: one process following some sessions' SSE
feeds over raw asyncio sockets (no HTTP library), recording when each event arrives and how
late its own event loop runs.

    python -m bench.sse_client HOST PORT TOKEN     (session ids on stdin, one JSON line)

It prints `open` once every feed sent its current state, then records until a JSON line
arrives on stdin: each session's last version; once every feed received it (or after 30 s),
it prints one JSON document: every event received as
[session index, version, receipt time, updated_at time] and the loop-lag samples as
[time, lag in ms] (a task asking to sleep 5 ms; the lag is how much longer it slept).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from datetime import datetime
from typing import Any

TICK_S = 0.005


async def follow(host: str, port: int, token: str, index: int, session_id: str,
                 events: list[list[Any]], opened: asyncio.Event, counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write((f"GET /api/sessions/{session_id}/live HTTP/1.1\r\nHost: {host}\r\n"
                  f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    chunked = b"transfer-encoding: chunked" in head.lower()
    buffer = b""
    first = True
    while True:
        if chunked:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            buffer += data[:-2]
        else:
            data = await reader.read(65536)
            if not data:
                return
            buffer += data
        now = time.time()
        *complete, buffer = buffer.split(b"\n\n")
        for event in complete:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    state = json.loads(line[5:])
                    at = datetime.fromisoformat(state["updated_at"]).timestamp()
                    events.append([index, state["version"], now, at])
                    if first:
                        first = False
                        counter[0] -= 1
                        if counter[0] == 0:
                            opened.set()


async def lag_probe(samples: list[list[float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(TICK_S)
        samples.append([time.time(), 1000 * (time.perf_counter() - start - TICK_S)])


async def main(host: str, port: int, token: str, ids: list[str]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stop, opened = asyncio.Event(), asyncio.Event()
    events: list[list[Any]] = []
    lag: list[list[float]] = []
    counter = [len(ids)]

    final: list[int] = []

    def stdin() -> None:
        final.extend(json.loads(sys.stdin.readline()))
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=stdin, daemon=True).start()
    probe = asyncio.create_task(lag_probe(lag, stop))
    feeds = [asyncio.create_task(follow(host, port, token, k, i, events, opened, counter))
             for k, i in enumerate(ids)]
    await asyncio.wait_for(opened.wait(), 120)
    print("open", flush=True)
    await stop.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        last = [0] * len(ids)
        for index, version, _, _ in events:
            last[index] = max(last[index], version)
        if all(seen >= wanted for seen, wanted in zip(last, final, strict=True)):
            break
        await asyncio.sleep(0.1)
    for task in feeds:
        task.cancel()
    await asyncio.gather(*feeds, probe, return_exceptions=True)
    return {"events": events, "lag": lag}


if __name__ == "__main__":
    ids = json.loads(sys.stdin.readline())
    result = asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], ids))
    print(json.dumps(result), flush=True)
