"""Reading a live feed (Server-Sent Events) over HTTP in tests."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.support.http_service import CLIENT


@contextmanager
def feed(
    client: httpx.Client, session_id: str, headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Iterator[Iterator[dict[str, Any]]]:
    """The feed's events as dicts (id, event, data); the connection closes on exit."""
    with client.stream("GET", f"/api/sessions/{session_id}/live", headers=headers or CLIENT,
                       params=params, timeout=httpx.Timeout(20.0)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield events(response.iter_lines())


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):  # ":" lines are keep-alive comments
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def take(stream: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [next(stream) for _ in range(n)]


@contextmanager
def watching(
    client: httpx.Client, session_id: str, headers: dict[str, str] | None = None
) -> Iterator[Callable[[float], dict[str, Any]]]:
    """The feed read by a thread of its own: yields `next_event(deadline_s)`, which fails the
    test when no event came within the deadline (the feed's keep-alive comments would keep a
    plain read waiting for ever)."""
    received: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()
    with feed(client, session_id, headers) as live:

        def read() -> None:
            try:
                for event in live:
                    received.put(event)
            except BaseException as exc:  # the connection closed at the end of the test
                received.put(exc)

        threading.Thread(target=read, name="sse-reader", daemon=True).start()

        def next_event(deadline_s: float) -> dict[str, Any]:
            try:
                item = received.get(timeout=deadline_s)
            except queue.Empty:
                pytest.fail(f"no event on the feed within {deadline_s} s")
            if isinstance(item, BaseException):
                raise item
            return item

        yield next_event
