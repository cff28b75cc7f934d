"""Pages of another origin (an Electron renderer, a web app on its own host) may call the API
only when `CLARA_ES_HTTP_CORS_ORIGINS` names their origin; by default, same origin only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from clara_es.adapters.store import Store
from clara_es.bootstrap import read_settings
from clara_es.domain import VirtualClock
from clara_es.http import create_app
from tests.support.http_service import READER, live_server, open_service, start_session

APP = "app://clara"


def serving(store: Store, clock: VirtualClock, origins: tuple[str, ...]) -> Iterator[httpx.Client]:
    service = open_service(store, clock, cors_origins=origins)
    with live_server(create_app(service), service) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture
def http(sqlite_store: Store, clock: VirtualClock) -> Iterator[httpx.Client]:
    yield from serving(sqlite_store, clock, (APP,))


def preflight(http: httpx.Client, origin: str) -> httpx.Response:
    return http.options("/api/sessions", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


def test_an_allowed_origin_may_send_commands_with_a_token(http: httpx.Client) -> None:
    response = preflight(http, APP)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= set(allowed.split(", "))


def test_an_allowed_origin_reads_the_status_and_its_freshness_headers(
    http: httpx.Client,
) -> None:
    session_id = start_session(http)
    response = http.get(f"/api/sessions/{session_id}", headers={**READER, "Origin": APP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-clara-source" in exposed and "x-clara-views-behind" in exposed


def test_another_origin_is_refused_and_gets_no_cors_headers(http: httpx.Client) -> None:
    assert preflight(http, "https://elsewhere.example").status_code == 400
    session_id = start_session(http)
    response = http.get(f"/api/sessions/{session_id}",
                        headers={**READER, "Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in response.headers


def test_by_default_no_origin_but_the_service_own(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    for http in serving(sqlite_store, clock, ()):
        response = preflight(http, APP)
        assert "access-control-allow-origin" not in response.headers


def test_the_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARA_ES_HTTP_CORS_ORIGINS", f"{APP}, http://localhost:5173 ,")
    assert read_settings().cors_origins == (APP, "http://localhost:5173")
