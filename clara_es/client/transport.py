"""How the client reaches the service: HTTP (httpx), or in-process for tests and the demo."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import httpx

from clara_es.application import VoiceSessions
from clara_es.application.batch import apply_batch
from clara_es.domain import UIState
from clara_es.domain.commands import ROUTES, StartSession


class Unreachable(Exception):
    """The service did not answer (network down, refused, timed out, or 5xx): try later."""


class Refused(Exception):
    """The service answered with a problem that trying again will not change."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class Transport(Protocol):
    def start(
        self, room: str, participant: str, policy: dict[str, Any], key: str
    ) -> UIState: ...

    def send(
        self, session_id: UUID, sent_at: datetime, signals: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """POST /api/sessions/{id}/signals: the answer's JSON (results and final state)."""
        ...


class HttpTransport:
    """The service's HTTP API with a bearer token. Connection failures are retried by httpx
    (`retries`) before the call gives up as Unreachable."""

    def __init__(
        self, base_url: str, token: str, *, http: httpx.Client | None = None,
        retries: int = 2, timeout: float = 10.0,
    ) -> None:
        self.http = http or httpx.Client(
            base_url=base_url, timeout=timeout, transport=httpx.HTTPTransport(retries=retries)
        )
        self.headers = {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        try:
            response = self.http.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        if response.status_code >= 500:
            raise Unreachable(f"the service answered {response.status_code}")
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            raise Refused(response.status_code, detail)
        return response.json()

    def start(self, room: str, participant: str, policy: dict[str, Any], key: str) -> UIState:
        body = {"room": room, "participant": participant, "policy": policy}
        return UIState.model_validate(self._post("/api/sessions", body, key))

    def send(
        self, session_id: UUID, sent_at: datetime, signals: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"sent_at": sent_at.isoformat(), "signals": signals}
        answer: dict[str, Any] = self._post(f"/api/sessions/{session_id}/signals", body)
        return answer


class InProcessTransport:
    """The application itself, in this process (tests, the demo). `reachable` cuts it."""

    def __init__(self, app: VoiceSessions) -> None:
        self.app = app
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise Unreachable("the in-process service is cut off")

    def start(self, room: str, participant: str, policy: dict[str, Any], key: str) -> UIState:
        self._check()
        return self.app.handle(StartSession.build(
            room=room, participant=participant, policy=policy, idempotency_key=key))

    def send(
        self, session_id: UUID, sent_at: datetime, signals: list[dict[str, Any]]
    ) -> dict[str, Any]:
        self._check()
        commands = []
        for signal in signals:
            fields = {k: v for k, v in signal.items() if k != "type"}
            commands.append(ROUTES[signal["type"]].build(**fields))
        route_of = {command: route for route, command in ROUTES.items()}
        return apply_batch(self.app, session_id, sent_at, commands, route_of).model_dump(
            mode="json")
