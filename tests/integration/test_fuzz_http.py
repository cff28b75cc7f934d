"""hypothesis against the HTTP bodies: every command route (start, each signal, the batch) and
LiveKit's webhook, with bodies built from the route's own fields, any JSON, and bytes that are
not JSON. Whatever the body: never a 5xx; a refusal is a problem document (422 for a bad body,
with the field named); and a refused request leaves the store as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clara_es.domain.commands import ROUTES
from clara_es.http import create_app
from clara_es.http.commands import body_model
from clara_es.http.service import Service
from tests.support.http_service import AGENT, API_KEY, API_SECRET, ROOM, USER, open_service
from tests.support.livekit_sdk import sign

PROBLEM = "application/problem+json"
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# Values a field of some route takes (so that many bodies are valid), then anything.
PLAUSIBLE = st.one_of(st.integers(-1, 6), st.sampled_from(
    ["poor", "good", "lost", "excellent", "wifi off", ROOM, USER, "agent-1", "user", "client",
     "agent", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "x" * 600, "\x00", "", True,
     None, {"base_delay_ms": 10}, {"max_attempts": 0}, "LLM", "stt"]))
SCALARS = st.one_of(
    PLAUSIBLE, st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=False),
    st.text(max_size=30),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def fields_of(route: str) -> list[str]:
    model = body_model(ROUTES[route]) if route in ROUTES else None
    return list(model.model_fields) if model is not None else ["occurred_at"]


@st.composite
def shaped(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    """A body with (some of) the route's own fields, and now and then one it does not have."""
    body = {name: draw(st.one_of(PLAUSIBLE, PLAUSIBLE, JSON)) for name in names
            if draw(st.integers(0, 3))}
    if draw(st.integers(0, 4)) == 0:
        body[draw(st.text(max_size=10))] = draw(JSON)
    return body


def payloads(names: list[str]) -> st.SearchStrategy[bytes]:
    as_json = st.one_of(shaped(names), JSON).map(lambda v: json.dumps(v).encode())
    nested = st.integers(100, 5000).map(lambda n: b"[" * n + b"]" * n)
    return st.one_of(as_json, as_json, as_json, st.binary(max_size=64), nested)


@pytest.fixture
def service(store: Any, clock: Any) -> Service:  # type: ignore[override]
    return open_service(store, clock, follow_views=False)


@pytest.fixture
def http(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client


def head(service: Service) -> int:
    return service.app.recorder.max_notification_id() or 0


def refused_cleanly(answer: Any, before: int, service: Service) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == PROBLEM, answer.text
        problem = answer.json()
        assert problem["status"] == answer.status_code and problem["detail"]
        assert head(service) == before, f"a refused request appended: {answer.text}"
    if answer.status_code == 422:
        assert isinstance(problem["errors"], list)


def connected_session(http: TestClient) -> str:
    session_id = http.post("/api/sessions", json={"room": ROOM, "participant": USER},
                           headers=AGENT).json()["session_id"]
    for name in ("connect", "connected"):
        assert http.post(f"/api/sessions/{session_id}/{name}", headers=AGENT).status_code == 200
    return session_id


ROUTE_NAMES = ["", "signals", *sorted(ROUTES)]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes]:
    route = draw(st.sampled_from(ROUTE_NAMES))
    if route == "signals":
        names = ["sent_at", "signals"]
        signal = st.fixed_dictionaries({"type": st.sampled_from(sorted(ROUTES))},
                                       optional={"occurred_at": JSON, "idempotency_key": JSON,
                                                 "attempt": JSON, "reason": JSON})
        batch = st.fixed_dictionaries(
            {"sent_at": st.one_of(st.just("2026-01-01T00:00:00Z"), JSON),
             "signals": st.one_of(st.lists(signal, max_size=3), JSON)})
        payload = st.one_of(batch.map(lambda v: json.dumps(v).encode()), payloads(names))
    else:
        names = ["room", "participant", "policy", "occurred_at"] if route == "" else (
            fields_of(route))
        payload = payloads(names)
    return route, draw(payload)


def test_no_command_body_is_a_server_error_or_half_applied(
    http: TestClient, service: Service
) -> None:
    session_id = connected_session(http)

    @given(request=requests())
    @FUZZ
    def fuzz(request: tuple[str, bytes]) -> None:
        route, payload = request
        url = "/api/sessions" if route == "" else f"/api/sessions/{session_id}/{route}"
        before = head(service)
        answer = http.post(url, content=payload,
                           headers={**AGENT, "Content-Type": "application/json"})
        refused_cleanly(answer, before, service)

    fuzz()


EVENTS = ["participant_joined", "participant_left", "participant_connection_aborted",
          "room_finished", "room_started", "track_published", "", "x"]


@st.composite
def webhooks(draw: st.DrawFn) -> str:
    # Mostly what LiveKit sends (so that most parse and reach the sessions), then anything.
    def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.integers(0, 11).flatmap(lambda n: JSON if n == 0 else valid)

    participant = st.fixed_dictionaries({}, optional={
        "identity": mostly(st.sampled_from([USER, "bob", ""])), "sid": mostly(st.just("PA_1")),
        "disconnectReason": mostly(st.one_of(st.integers(0, 20), st.sampled_from(
            ["CLIENT_INITIATED", "ROOM_DELETED", "SIGNAL_CLOSE", "NOPE"]))),
    })
    shaped_event = st.fixed_dictionaries(
        {"event": mostly(st.sampled_from(EVENTS))},
        optional={"id": mostly(st.uuids().map(str)),
                  "room": mostly(st.fixed_dictionaries({"name": mostly(st.just(ROOM))})),
                  "participant": mostly(participant),
                  "createdAt": mostly(st.integers(0, 2**40).map(str))})
    value = draw(st.one_of(shaped_event, shaped_event, JSON))
    return json.dumps(value) if draw(st.integers(0, 9)) else draw(st.text(max_size=40))


def test_no_signed_webhook_is_a_server_error(http: TestClient, service: Service) -> None:
    connected_session(http)

    @given(text=webhooks())
    @FUZZ
    def fuzz(text: str) -> None:
        before = head(service)
        answer = http.post("/api/webhooks/livekit", content=text.encode(), headers={
            "Authorization": sign(text, API_KEY, API_SECRET),
            "Content-Type": "application/webhook+json"})
        assert answer.status_code < 500, answer.text
        assert answer.status_code != 401, answer.text  # the signature is good: 422 if unreadable
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == PROBLEM
            assert head(service) == before

    fuzz()
