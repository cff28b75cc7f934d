"""schemathesis against the OpenAPI document, on both stores: whatever it sends, no 5xx, and
every response (problems included) matches the document."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.http_service import (
    AGENT,
    CLIENT,
    READER,
    ROOM,
    USER,
    command,
    start_session,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_the_api_keeps_its_contract(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    # The live feed never ends for a session that exists; test_http_sse.py covers it.
    operations = [r.ok() for r in schema.exclude(path_regex=r"/live$").get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        check_operation(operation)


def check_operation(operation: Any) -> None:
    # Reads with a read token, commands with the room's agent token: both get past the
    # token check, so the bodies and parameters reach the handlers.
    headers = READER if operation.method.upper() == "GET" else AGENT

    @given(case=operation.as_strategy())
    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def keeps_contract(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    keeps_contract()


def test_every_405_names_every_method_the_path_serves(client: Any) -> None:
    document = client.get("/openapi.json").json()
    tried = 0
    for path, operations in document["paths"].items():
        served = {method.upper() for method in operations}
        url = path.replace("{session_id}", str(uuid4()))
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - served:
            answer = client.request(method, url, headers=READER)
            assert answer.status_code == 405, (method, path)
            assert set(answer.headers["Allow"].split(", ")) == served, (method, path)
            assert answer.headers["content-type"] == "application/problem+json"
            tried += 1
    assert tried > 60


def test_the_schema_bounds_every_delay_at_24_hours(client: Any) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["BackoffPolicy"]["properties"]["base_delay_ms"]["maximum"] == 24 * 3600_000
    day = {"room": ROOM, "participant": USER, "policy": {"base_delay_ms": 24 * 3600_000,
                                                          "max_attempts": 1}}
    assert client.post("/api/sessions", json=day, headers=CLIENT).status_code == 201
    day["policy"]["base_delay_ms"] += 1  # type: ignore[index]
    longer = client.post("/api/sessions", json=day, headers=CLIENT)
    assert longer.status_code == 422 and "24 hours" in longer.json()["detail"]


@pytest.mark.parametrize("value", ["0.5", "1", "1e3", "2026-01-01", "yesterday"])
def test_a_time_is_a_date_and_time_as_the_schema_says(client: Any, value: str) -> None:
    session_id = start_session(client)
    document = client.get("/openapi.json").json()
    history = document["paths"]["/api/sessions/{session_id}/history"]["get"]
    until = next(p for p in history["parameters"] if p["name"] == "until")
    assert {"type": "string", "format": "date-time"} in until["schema"]["anyOf"]

    url = f"/api/sessions/{session_id}/history"
    refused = client.get(url, params={"until": value}, headers=READER)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "until"
    assert client.get(url, params={"until": "2026-01-01T00:00:00"},
                      headers=READER).status_code == 200
    number = json.loads(value) if value[0].isdigit() and "-" not in value else value
    body = command(client, session_id, "connect", {"occurred_at": number})
    assert body.status_code == 422 and body.json()["errors"][0]["field"] == "occurred_at"
    batch = client.post(f"/api/sessions/{session_id}/signals", headers=CLIENT, json={
        "sent_at": number, "signals": [{"type": "connect", "occurred_at": number,
                                        "idempotency_key": "k1"}]})
    assert batch.status_code == 422
    assert {e["field"] for e in batch.json()["errors"]} == {"sent_at", "signals.0.occurred_at"}
    assert client.get(f"/api/sessions/{session_id}", headers=READER).json()["version"] == 1
