"""Reports that survive the outage they describe: occurred_at, idempotency keys and the batch
endpoint, over HTTP, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from clara_es.adapters.store import Store
from clara_es.application import session_history
from clara_es.domain import FAILURE_TEXT, VirtualClock
from clara_es.http import Options, Service, create_app
from clara_es.http.auth import Role, mint

SECRET = "test-secret-that-is-long-enough-for-hs256"
CLIENT = {"Authorization": f"Bearer {mint('test-key', SECRET, Role.CLIENT, 'alice', 'room-1')}"}
PROBLEM = "application/problem+json"


def _service(store: Store, clock: VirtualClock) -> Service:
    return Service(store, api_key="test-key", api_secret=SECRET, clock=clock,
                   options=Options(feed_poll=0.05, view_poll=0.01))


@pytest.fixture
def http(store: Store, clock: VirtualClock) -> Iterator[TestClient]:
    with TestClient(create_app(_service(store, clock))) as client:
        yield client


def _post(http: TestClient, path: str, body: dict[str, Any] | None = None,
          key: str | None = None) -> Any:
    headers = {**CLIENT, **({"Idempotency-Key": key} if key else {})}
    return http.post(f"/api/sessions{path}", json=body, headers=headers)


def _connected(http: TestClient) -> str:
    sid = _post(http, "", {"room": "room-1", "participant": "alice"}).json()["session_id"]
    _post(http, f"/{sid}/connect")
    assert _post(http, f"/{sid}/connected").json()["status_text"] == "Connected"
    return str(sid)


def _version(http: TestClient, sid: str) -> int:
    service: Service = http.app.state.service  # type: ignore[attr-defined]
    return service.app.session(UUID(sid)).version


def test_a_repeated_command_answers_the_first_answer_and_appends_nothing(
    store: Store, clock: VirtualClock, http: TestClient
) -> None:
    sid = _connected(http)
    first = _post(http, f"/{sid}/disconnected", {"reason": "wifi off"}, key="k-1")
    assert first.status_code == 200
    version = _version(http, sid)
    clock.advance(3)
    again = _post(http, f"/{sid}/disconnected", {"reason": "wifi off"}, key="k-1")
    assert (again.status_code, again.json()) == (200, first.json())
    assert _version(http, sid) == version

    other = _post(http, f"/{sid}/disconnected", {"reason": "cable"}, key="k-1")
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM
    assert "k-1" in other.json()["detail"]
    assert _version(http, sid) == version

    # Another process on the same store (the service restarted) knows the key too.
    with TestClient(create_app(_service(store, clock))) as restarted:
        repeat = _post(restarted, f"/{sid}/disconnected", {"reason": "wifi off"}, key="k-1")
        assert repeat.json() == first.json()
    assert _version(http, sid) == version


def test_a_repeated_start_with_its_key_is_the_same_session(http: TestClient) -> None:
    body = {"room": "room-1", "participant": "alice"}
    first = _post(http, "", body, key="start-1")
    again = _post(http, "", body, key="start-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert _post(http, "", {**body, "room": "room-2"}, key="start-1").status_code in (403, 422)


def test_occurred_at_decides_and_the_service_s_time_is_recorded_beside_it(
    clock: VirtualClock, http: TestClient
) -> None:
    sid = _connected(http)
    dropped = clock.now()
    clock.advance(2.5)  # the report arrives 2.5 s after the drop
    state = _post(http, f"/{sid}/disconnected",
                  {"reason": "wifi off", "occurred_at": dropped.isoformat()}).json()
    assert datetime.fromisoformat(state["next_retry_at"]) == dropped + timedelta(seconds=1)
    service: Service = http.app.state.service  # type: ignore[attr-defined]
    last = session_history(service.app, UUID(sid))[-1]
    assert last.occurred_at == dropped
    assert datetime.fromisoformat(last.cause["recorded_at"]) == clock.now()

    future = (clock.now() + timedelta(minutes=5)).isoformat()
    refused = _post(http, f"/{sid}/attempt-started", {"attempt": 1, "occurred_at": future})
    assert refused.status_code == 422
    assert "future" in refused.json()["detail"]


def _outage(start: datetime) -> list[dict[str, Any]]:
    """A 40-second outage as the client saw it: the drop, then five attempts that fail."""
    signals: list[dict[str, Any]] = [
        {"type": "disconnected", "reason": "wifi off", "occurred_at": start}]
    t = start
    for n, delay in enumerate([1, 2, 4, 8, 16], start=1):
        t += timedelta(seconds=delay)
        signals.append({"type": "attempt-started", "attempt": n, "occurred_at": t})
        t += timedelta(seconds=0.2)
        signals.append({"type": "attempt-failed", "attempt": n, "error": "network unreachable",
                        "occurred_at": t})
    for i, s in enumerate(signals):
        s["idempotency_key"] = f"{start.timestamp()}-{i}"
    return signals


def _timeline(http: TestClient, sid: str) -> list[tuple[str, float, str]]:
    service: Service = http.app.state.service  # type: ignore[attr-defined]
    entries = session_history(service.app, UUID(sid))
    t0 = entries[0].occurred_at
    return [(e.type, (e.occurred_at - t0).total_seconds(), e.state.status_text) for e in entries]


def test_an_outage_reported_afterwards_in_one_batch_reads_as_one_reported_live(
    clock: VirtualClock, http: TestClient
) -> None:
    live = _connected(http)
    for s in _outage(clock.now()):
        clock.advance_to(s["occurred_at"])
        fields = {k: v for k, v in s.items() if k not in ("type", "idempotency_key")}
        fields["occurred_at"] = s["occurred_at"].isoformat()
        _post(http, f"/{live}/{s['type']}", fields, key=s["idempotency_key"])

    clock.advance(60)
    late = _connected(http)
    signals = _outage(clock.now())
    clock.advance(90)  # the network is back; the client flushes what it buffered
    body = {"sent_at": clock.now().isoformat(),
            "signals": [{**s, "occurred_at": s["occurred_at"].isoformat()} for s in signals]}
    answer = _post(http, f"/{late}/signals", body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [r["status"] for r in result["results"]] == [200] * len(signals)
    assert result["state"]["status_text"] == FAILURE_TEXT
    assert result["state"]["start_enabled"] is True
    assert _timeline(http, late) == _timeline(http, live)

    version = _version(http, late)
    again = _post(http, f"/{late}/signals", body)
    assert again.json()["results"] == result["results"]
    assert again.json()["state"] == result["state"]
    assert _version(http, late) == version


def test_a_batch_from_a_clock_too_far_off_is_refused(clock: VirtualClock, http: TestClient) -> None:
    sid = _connected(http)
    signals = _outage(clock.now() - timedelta(hours=2))[:1]
    body = {"sent_at": (clock.now() - timedelta(hours=2)).isoformat(),
            "signals": [{**s, "occurred_at": s["occurred_at"].isoformat()} for s in signals]}
    refused = _post(http, f"/{sid}/signals", body)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM
    assert "clock" in refused.json()["detail"]
    assert _post(http, f"/{sid}/signals", {**body, "signals": [
        {**body["signals"][0], "type": "teleport"}]}).status_code == 422
