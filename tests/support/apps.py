"""VoiceSessions applications for a test, each closed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock

AppFactory = Callable[..., VoiceSessions]


@contextmanager
def closing_apps(env: Callable[[], Mapping[str, str]], clock: VirtualClock) -> Iterator[AppFactory]:
    """A factory of applications on `env()` (on the test's clock unless told otherwise)."""
    apps: list[VoiceSessions] = []

    def factory(**kwargs: Any) -> VoiceSessions:
        kwargs.setdefault("clock", clock)
        app = VoiceSessions(env(), **kwargs)
        apps.append(app)
        return app

    try:
        yield factory
    finally:
        for app in apps:
            app.close()
