"""The HTTP API through a real uvicorn with httpx, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from clara_es.adapters.store import Store
from clara_es.domain import FAILURE_TEXT, VirtualClock
from clara_es.http import Service, create_app
from clara_es.http.auth import Role
from tests.support.http_service import (
    AGENT,
    API_KEY,
    API_SECRET,
    CLIENT,
    READER,
    ROOM,
    USER,
    bearer,
    command,
    live_server,
    open_service,
    start_session,
)

PROBLEM = "application/problem+json"


def stream_version(service: Service, session_id: str) -> int:
    """The stream's own version (not a view), to prove that nothing was appended."""
    return service.app.session(UUID(session_id)).version


def connected_session(client: httpx.Client) -> str:
    session_id = start_session(client)
    assert command(client, session_id, "connect").json()["connection_state"] == "connecting"
    assert command(client, session_id, "connected").json()["status_text"] == "Connected"
    return session_id


def test_every_command_returns_the_new_ui_state(
    client: httpx.Client, clock: VirtualClock
) -> None:
    session_id = connected_session(client)
    state = command(client, session_id, "disconnected", {"reason": "network"}).json()
    assert state["connection_state"] == "reconnecting"
    assert state["start_enabled"] is False
    assert state["next_retry_at"] is not None
    clock.advance(1)
    state = command(client, session_id, "attempt-started", {"attempt": 1}).json()
    assert state["status_text"] == "Reconnecting... (attempt 1 of 5)"
    state = command(client, session_id, "attempt-failed", {"attempt": 1, "error": "dns"}).json()
    assert state["connection_state"] == "reconnecting"
    clock.advance(2)
    command(client, session_id, "attempt-started", {"attempt": 2})
    state = command(client, session_id, "reconnected").json()
    assert (state["status_text"], state["attempt"]) == ("Connected", 0)
    state = command(client, session_id, "quality", {"participant": USER, "quality": "good"},
                    headers=AGENT).json()
    assert state["connection_state"] == "connected"
    state = command(client, session_id, "end", {"reason": "user"}).json()
    assert (state["status_text"], state["start_enabled"]) == ("Session ended", True)


def test_attempts_running_out_show_the_failure_text(
    client: httpx.Client, clock: VirtualClock
) -> None:
    session_id = connected_session(client)
    command(client, session_id, "disconnected", {"reason": "network"})
    for attempt in range(1, 6):
        clock.advance(2 ** (attempt - 1))
        command(client, session_id, "attempt-started", {"attempt": attempt})
        state = command(client, session_id, "attempt-failed",
                        {"attempt": attempt, "error": "timeout"}).json()
    assert state["status_text"] == FAILURE_TEXT
    assert state["start_enabled"] is True


def test_a_refused_command_is_409_and_appends_nothing(
    client: httpx.Client, service: Service
) -> None:
    session_id = connected_session(client)
    command(client, session_id, "disconnected", {"reason": "network"})
    before = stream_version(service, session_id)
    response = command(client, session_id, "connected")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 409
    assert "reconnected" in problem["detail"]
    assert stream_version(service, session_id) == before


def test_a_status_read_answers_the_same_however_its_id_and_token_are_written(
    client: httpx.Client, service: Service,
) -> None:
    session_id = connected_session(client)
    service.settle()
    token = CLIENT["Authorization"].split(" ", 1)[1]
    spellings = [
        (f"/api/sessions/{session_id}", CLIENT),
        (f"/api/sessions/{session_id.upper()}", CLIENT),
        (f"/api/sessions/{UUID(session_id).hex}", CLIENT),
        (f"/api/sessions/{session_id}", {"Authorization": f"bearer {token}"}),
        (f"/api/sessions/{session_id}?min_version=2", {**CLIENT, "X-Clara-Min-Version": "3"}),
    ]
    answers = [client.get(path, headers=headers) for path, headers in spellings]
    assert [a.status_code for a in answers] == [200] * len(spellings)
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].json()["session_id"] == session_id
    assert answers[0].json()["version"] == 3
    assert {a.headers["X-Clara-Source"] for a in answers} == {"view"}
    assert {a.headers["X-Clara-Views-Behind"] for a in answers} == {"0"}
    assert {a.headers["content-type"] for a in answers} == {"application/json"}


def test_a_command_answers_the_same_whether_the_plain_path_or_the_route_takes_it(
    client: httpx.Client, service: Service,
) -> None:
    """Commands are answered in plain ASGI (command_post.py) unless something is unusual (a
    query string, here), when the FastAPI route answers: both must say the same."""
    sessions = {via: start_session(client) for via in ("", "?via=route")}
    steps = [("connect", None, {}), ("connected", None, {}),
             ("disconnected", {"reason": "network"}, {"Idempotency-Key": "drop-1"}),
             ("disconnected", {"reason": "network"}, {"Idempotency-Key": "drop-1"}),
             ("connected", None, {}), ("attempt-started", {"attempt": "one"}, {})]
    answers: dict[str, list[tuple[int, str, dict[str, object]]]] = {}
    for via, session_id in sessions.items():
        answers[via] = []
        for name, body, headers in steps:
            response = client.post(f"/api/sessions/{session_id}/{name}{via}", json=body,
                                   headers={**CLIENT, **headers})
            shown = {k: v for k, v in response.json().items()
                     if k not in ("session_id", "updated_at", "next_retry_at")}
            answers[via].append((response.status_code, response.headers["content-type"], shown))
        # The repeat and the refusals appended nothing after the first drop.
        assert stream_version(service, session_id) == answers[via][2][2]["version"]
    assert answers[""] == answers["?via=route"]
    assert [status for status, _, _ in answers[""]] == [200, 200, 200, 200, 409, 422]
    missing = "00000000-0000-4000-8000-000000000000"
    gone = [client.post(f"/api/sessions/{missing}/connect{via}", headers=CLIENT)
            for via in sessions]
    assert [g.status_code for g in gone] == [404, 404]
    assert gone[0].json() == gone[1].json()


def test_a_status_read_without_a_token_or_with_a_bad_one_is_401(client: httpx.Client) -> None:
    session_id = start_session(client)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        answer = client.get(f"/api/sessions/{session_id}", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["content-type"] == PROBLEM


def test_an_unknown_session_is_404(client: httpx.Client) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for response in (
        command(client, unknown, "connect"),
        client.get(f"/api/sessions/{unknown}", headers=READER),
        client.get(f"/api/sessions/{unknown}/history", headers=READER),
        client.get(f"/api/sessions/{unknown}/live", headers=READER),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
        assert unknown in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("attempt-started", {}, "attempt"),
        ("attempt-started", {"attempt": 0}, "attempt"),
        ("attempt-started", {"attempt": "two"}, "attempt"),
        ("attempt-failed", {"attempt": 1}, "error"),
        ("quality", {"participant": USER, "quality": "superb"}, "quality"),
        ("disconnected", {"reason": "x", "extra": 1}, "extra"),
        ("disconnected", {"reason": "line\nbreak"}, "reason"),
    ],
)
def test_an_invalid_body_is_422_naming_the_field_and_appends_nothing(
    client: httpx.Client, service: Service, name: str, body: dict[str, object], field: str
) -> None:
    session_id = connected_session(client)
    before = stream_version(service, session_id)
    response = command(client, session_id, name, body,
                       headers=AGENT if name == "quality" else CLIENT)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    assert stream_version(service, session_id) == before


def test_an_invalid_start_is_422_and_starts_nothing(
    client: httpx.Client, service: Service
) -> None:
    for body, field in [
        ({"room": ROOM}, "participant"),
        ({"room": "", "participant": USER}, "room"),
        ({"room": ROOM, "participant": USER, "policy": {"factor": 1e300}}, "policy"),
        ({"room": ROOM, "participant": USER, "policy": {"max_attempts": 0}}, "max_attempts"),
    ]:
        response = client.post("/api/sessions", json=body, headers=CLIENT)
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"]
    assert service.app.recorder.max_notification_id() in (0, None)


def test_a_missing_or_bad_token_is_401(client: httpx.Client, service: Service) -> None:
    session_id = connected_session(client)
    before = stream_version(service, session_id)
    expired = api.AccessToken(API_KEY, API_SECRET).with_identity(USER).with_grants(
        api.VideoGrants(room_join=True, room=ROOM)).with_ttl(timedelta(seconds=-60)).to_jwt()
    forged = api.AccessToken(API_KEY, "another-secret-of-sufficient-length!").with_identity(
        USER).with_grants(api.VideoGrants(room_join=True, room=ROOM)).to_jwt()
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"},
                    {"Authorization": f"Bearer {expired}"}, {"Authorization": f"Bearer {forged}"}):
        response = client.post(f"/api/sessions/{session_id}/end", json={}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/sessions", headers=headers).status_code == 401
    assert stream_version(service, session_id) == before


def test_a_token_outside_its_rights_is_403_and_appends_nothing(
    client: httpx.Client, service: Service
) -> None:
    session_id = connected_session(client)
    before = stream_version(service, session_id)
    refused = [
        (bearer(Role.CLIENT, "mallory", ROOM), "end"),  # another identity's session
        (bearer(Role.AGENT, "agent-2", "room-2"), "disconnected"),  # another room's agent
        (READER, "end"),  # reads only
    ]
    for headers, name in refused:
        response = command(client, session_id, name, {}, headers=headers)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM
    mallory = bearer(Role.CLIENT, "mallory", ROOM)
    assert client.get(f"/api/sessions/{session_id}", headers=mallory).status_code == 403
    assert client.get("/api/stats", headers=CLIENT).status_code == 403
    response = client.post("/api/sessions", json={"room": ROOM, "participant": USER},
                           headers=mallory)
    assert response.status_code == 403
    assert stream_version(service, session_id) == before
    # The same session, with the right tokens: the owner and the room's agent.
    assert command(client, session_id, "disconnected", {}, headers=AGENT).status_code == 200
    assert client.get(f"/api/sessions/{session_id}", headers=CLIENT).status_code == 200


def test_reads_from_the_views(client: httpx.Client, service: Service, clock: VirtualClock) -> None:
    alice = connected_session(client)
    bob = start_session(client, room="room-2", participant="bob")
    command(client, alice, "disconnected", {"reason": "network"})
    clock.advance(1)
    command(client, alice, "attempt-started", {"attempt": 1})
    clock.advance(0.5)
    command(client, alice, "reconnected")
    service.settle()

    state = client.get(f"/api/sessions/{alice}", headers=CLIENT).json()
    assert (state["status_text"], state["version"]) == ("Connected", 7)
    listed = client.get("/api/sessions", headers=READER).json()
    assert {s["session_id"] for s in listed} == {alice, bob}
    assert [s["session_id"] for s in
            client.get("/api/sessions?state=idle", headers=READER).json()] == [bob]
    assert [s["session_id"] for s in
            client.get("/api/sessions?room=room-1", headers=READER).json()] == [alice]
    first = client.get("/api/sessions?limit=1", headers=READER).json()
    second = client.get("/api/sessions?limit=1&offset=1", headers=READER).json()
    assert {first[0]["session_id"], second[0]["session_id"]} == {alice, bob}
    # A client token lists only its own identity's sessions.
    assert [s["session_id"] for s in client.get("/api/sessions", headers=CLIENT).json()] == [alice]
    counts = next(s for s in listed if s["session_id"] == alice)["counts"]
    assert (counts["outages"], counts["reconnects"]) == (1, 1)

    history = client.get(f"/api/sessions/{alice}/history", headers=READER).json()
    assert [e["version"] for e in history] == list(range(1, 8))
    only = client.get(f"/api/sessions/{alice}/history?type=Reconnected&type=Disconnected",
                      headers=READER).json()
    assert [e["type"] for e in only] == ["Disconnected", "Reconnected"]

    stats = client.get("/api/stats", headers=READER).json()
    assert stats["sessions_by_state"] == {"connected": 1, "idle": 1}
    assert stats["recovery_rate"] == 1.0
    assert stats["time_to_recover_ms"]["p50"] == 1500


def test_health_readiness_and_metrics(client: httpx.Client, service: Service) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    session_id = connected_session(client)
    command(client, session_id, "connected", headers=bearer(Role.CLIENT, "mallory"))
    command(client, session_id, "disconnected", {})
    command(client, session_id, "connected")  # while reconnecting: refused
    command(client, session_id, "attempt-started", {"attempt": -1})  # invalid body
    service.settle()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["projection_lag"] == {
        "ui_state": 0, "attempt_counts": 0, "history": 0, "stats": 0}
    text = client.get("/metrics").text
    assert 'clara_es_commands_total{command="connected",outcome="ok"} 1.0' in text
    assert 'clara_es_commands_total{command="connected",outcome="forbidden"} 1.0' in text
    assert 'clara_es_commands_total{command="connected",outcome="refused"} 1.0' in text
    assert 'clara_es_commands_total{command="attempt_started",outcome="invalid"} 1.0' in text
    assert 'clara_es_sessions{state="reconnecting"} 1.0' in text
    assert 'clara_es_projection_lag{view="history"} 0.0' in text
    assert "clara_es_concurrency_retries_total 0.0" in text
    assert "clara_es_pending_timers 1.0" in text  # the first reconnect attempt is due


def test_readiness_fails_while_the_views_are_behind(store: Store, clock: VirtualClock) -> None:
    lagging = open_service(store, clock, follow_views=False, max_lag=2)
    with live_server(create_app(lagging), lagging) as url, httpx.Client(base_url=url) as http:
        session_id = connected_session(http)
        command(http, session_id, "disconnected", {})  # Disconnected, ReconnectScheduled
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["projection_lag"]["ui_state"] == 5
        # The status read still answers, from the stream, for a session the view lacks.
        assert http.get(f"/api/sessions/{session_id}", headers=CLIENT).json()["version"] == 5


def signed_webhook(kind: str, webhook_id: str, room: str = ROOM) -> tuple[str, str]:
    """A webhook body and the Authorization header LiveKit would send with it."""
    event = WebhookEvent(event=kind, id=webhook_id, room=models.Room(name=room, sid="RM_1"),
                         created_at=1_767_225_600)
    event.participant.CopyFrom(models.ParticipantInfo(identity=USER, sid="PA_1"))
    text = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return text, api.AccessToken(API_KEY, API_SECRET).with_sha256(digest).to_jwt()


def test_livekit_webhooks_are_verified_and_recorded_once(
    client: httpx.Client, service: Service
) -> None:
    session_id = connected_session(client)
    url = "/api/webhooks/livekit"
    text, signature = signed_webhook("participant_left", "WH_1")
    tampered = text.replace("RM_1", "RM_2")
    for content, headers in ((tampered, {"Authorization": signature}), (text, {})):
        response = client.post(url, content=content, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
    assert stream_version(service, session_id) == 3

    first = client.post(url, content=text, headers={"Authorization": signature})
    assert (first.json()["applied"], first.json()["duplicates"]) == (1, 0)
    after_first = stream_version(service, session_id)
    assert service.app.status(UUID(session_id)).connection_state == "reconnecting"
    again = client.post(url, content=text, headers={"Authorization": signature})
    # Known service-wide within LiveKit's retry window: it reaches no session at all.
    assert (again.json()["applied"], again.json()["duplicates"]) == (0, 0)
    assert "a redelivery changes nothing" in again.json()["note"]
    assert stream_version(service, session_id) == after_first

    elsewhere, elsewhere_signature = signed_webhook("participant_left", "WH_2", "nowhere")
    response = client.post(url, content=elsewhere, headers={"Authorization": elsewhere_signature})
    assert response.status_code == 404


def test_missing_views_are_503_not_a_crash(store: Store, clock: VirtualClock) -> None:
    from projections import db as views_db

    service = open_service(store, clock, follow_views=False)
    views_db.downgrade(store)  # the views' tables are gone
    with live_server(create_app(service), service) as url, httpx.Client(base_url=url) as http:
        response = http.get("/api/sessions", headers=READER)
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["retry-after"] == "1"
        assert http.get("/readyz").status_code == 503
        assert http.get("/healthz").status_code == 200


def test_client_and_agent_reporting_one_outage_at_once_schedule_once(
    client: httpx.Client, service: Service
) -> None:
    session_id = connected_session(client)
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def report(headers: dict[str, str]) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            barrier.wait()
            answers.append(command(own, session_id, "disconnected", {"reason": "network"},
                                   headers=headers).status_code)

    reporters = [threading.Thread(target=report, args=(CLIENT if n % 2 else AGENT,))
                 for n in range(8)]
    for thread in reporters:
        thread.start()
    for thread in reporters:
        thread.join(timeout=60)
    assert answers == [200] * 8
    types = [type(e).__name__ for e in
             service.app.repository.event_store.get(UUID(session_id), gt=3)]
    assert types.count("Disconnected") == 1
    assert types.count("ReconnectScheduled") == 1
    assert types.count("SignalIgnored") == 7


@pytest.mark.parametrize(("route", "body"), [
    ("pipeline-restart-claim", {"request_id": "r1", "agent": "a"}),
    ("pipeline-restart-finished", {"request_id": "r1"}),
    ("agent-error", {"source": "stt", "error": "x", "recoverable": True}),
    ("agent-closed", {"reason": "user_initiated"}),
])
def test_only_an_agent_token_may_send_the_agents_reports(
    client: httpx.Client, service: Service, route: str, body: dict[str, object]
) -> None:
    """A client cannot say that a pipeline restarted: 403, and nothing is appended."""
    session_id = start_session(client)
    before = stream_version(service, session_id)
    answer = client.post(f"/api/sessions/{session_id}/{route}", json=body,
                         headers=bearer(Role.CLIENT))
    assert answer.status_code == 403, answer.text
    assert "may not" in answer.json()["detail"]
    assert stream_version(service, session_id) == before
