"""The HTTP service under bad input and a store that does not answer: a body too large is
413 before its token is looked at, an unreadable body is 422, a request the store holds up
answers 503 with Retry-After, and health answers all the while; tokens stay out of the log."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from clara_es.adapters.store import Store
from clara_es.domain import VirtualClock
from clara_es.http import create_app
from clara_es.http.guards import HideTokens
from tests.support.http_service import CLIENT, live_server, open_service, start_session

PROBLEM = "application/problem+json"
LIMIT = 4096


@pytest.fixture
def http(sqlite_store: Store, clock: VirtualClock) -> Iterator[httpx.Client]:
    service = open_service(sqlite_store, clock, max_body_bytes=LIMIT, store_timeout_s=0.5)
    with live_server(create_app(service), service) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_a_body_over_the_limit_is_413_before_the_token_is_checked(http: httpx.Client) -> None:
    big = b'{"room": "' + b"x" * (LIMIT * 4) + b'"}'
    response = http.post("/api/sessions", content=big,
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert str(LIMIT) in response.json()["detail"]


def test_a_chunked_body_is_cut_off_at_the_limit(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"room": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    response = http.post("/api/sessions", content=chunks(), headers={
        **CLIENT, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


def test_json_nested_too_deeply_is_422_not_400(http: httpx.Client) -> None:
    deep = "[" * 2000 + "]" * 2000
    response = http.post("/api/sessions", content=deep.encode(),
                         headers={**CLIENT, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


def test_a_command_the_store_holds_up_is_503_with_retry_after_and_health_answers(
    http: httpx.Client, sqlite_store: Store,
) -> None:
    session_id = start_session(http)
    assert sqlite_store.sqlite_path is not None
    writer = sqlite3.connect(sqlite_store.sqlite_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock: every append waits for it
    try:
        response = http.post(f"/api/sessions/{session_id}/connect", json={}, headers=CLIENT)
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert int(response.headers["Retry-After"]) >= 1
        assert http.get("/healthz").status_code == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_live_feed_token_never_reaches_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/sessions/x/live?access_token=eyJabc.def.ghi&a=1", "1.1",
         200), None,
    )
    HideTokens().filter(record)
    line = record.getMessage()
    assert "eyJabc" not in line
    assert "access_token=***&a=1" in line


def test_the_api_pages_load_nothing_from_another_host(http: httpx.Client) -> None:
    for page in ("/docs", "/redoc"):
        response = http.get(page)
        assert response.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            assert http.get(source).status_code == 200, source
