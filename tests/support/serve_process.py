"""`clara-es serve` on a test's store with settings, and what a test reads back from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from clara_es.adapters.store import Store
from clara_es.http.auth import Role
from tests.support.http_service import bearer
from tests.support.served import served


@dataclass
class ServeProcess:
    url: str
    log: Path

    def history(self, session_id: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/sessions/{session_id}/history",
                             params={"limit": 10_000}, headers=bearer(Role.READ), timeout=10)
        response.raise_for_status()
        return list(response.json())

    def types(self, session_id: str) -> list[str]:
        return [row["type"] for row in self.history(session_id)]

    def logged(self) -> str:
        return self.log.read_text()


@contextmanager
def serve_process(store: Store, log: Path, **settings: str) -> Iterator[ServeProcess]:
    """`serve` on `store` with CLARA_ES_<NAME> `settings`, its output in `log`."""
    with served(store, log=log, settings=settings) as url:
        yield ServeProcess(url, log)
