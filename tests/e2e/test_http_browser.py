"""The status page in Debian's Chromium (through Playwright), driven live by the SSE feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from clara_es.domain import FAILURE_TEXT, VirtualClock
from clara_es.http import Service
from tests.support.http_service import CLIENT, READER, command, start_session

pytestmark = pytest.mark.browser

OUTAGE_SECONDS = 40


def test_the_status_light_follows_the_session_live(
    base_url: str, client: httpx.Client, page: Any, clock: VirtualClock, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    session_id = start_session(client)
    command(client, session_id, "connect")
    command(client, session_id, "connected")
    page.goto(f"{base_url}/?session={session_id}#token={token_of(CLIENT)}")
    status, button = page.locator("#status-text"), page.locator("#start")
    expect(status).to_have_text("Connected")
    expect(button).to_be_disabled()
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    page.screenshot(path=tmp_path / "1-connected.png")

    command(client, session_id, "disconnected", {"reason": "network"})
    expect(status).to_contain_text("Reconnecting...")
    expect(status).to_have_text("Reconnecting... (attempt 1 of 5)")
    expect(button).to_be_disabled()
    clock.advance(1)
    command(client, session_id, "attempt-started", {"attempt": 1})
    page.screenshot(path=tmp_path / "2-reconnecting.png")
    command(client, session_id, "reconnected")
    expect(status).to_have_text("Connected")

    # A 40 s outage on the virtual clock: every attempt the schedule makes inside it fails.
    state = command(client, session_id, "disconnected", {"reason": "network"}).json()
    outage_ends = clock.now().timestamp() + OUTAGE_SECONDS
    attempt = 0
    while state["next_retry_at"] is not None:
        attempt += 1
        clock.advance_to(parse(state["next_retry_at"]))
        assert clock.now().timestamp() < outage_ends
        command(client, session_id, "attempt-started", {"attempt": attempt})
        state = command(client, session_id, "attempt-failed",
                        {"attempt": attempt, "error": "network unreachable"}).json()
        if attempt < 5:
            expect(status).to_have_text(f"Reconnecting... (attempt {attempt + 1} of 5)")
            expect(button).to_be_disabled()
    assert attempt == 5
    expect(status).to_have_text(FAILURE_TEXT)
    expect(button).to_be_enabled()
    assert page.evaluate("window.loadedOnce") is True
    page.screenshot(path=tmp_path / "3-failed.png")

    button.click()  # a new session, followed live in the same page
    expect(status).to_have_text("Connecting...")
    expect(button).to_be_disabled()
    new_session = page.evaluate("new URLSearchParams(location.search).get('session')")
    assert new_session and new_session != session_id
    for name in ("1-connected", "2-reconnecting", "3-failed"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def parse(instant: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(instant)


def test_the_dashboard_shows_states_recoveries_and_a_timeline(
    base_url: str, client: httpx.Client, service: Service, page: Any, clock: VirtualClock,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    recovered = start_session(client)
    for name in ("connect", "connected", "disconnected"):
        command(client, recovered, name)
    clock.advance(1)
    command(client, recovered, "attempt-started", {"attempt": 1})
    clock.advance(1)
    command(client, recovered, "reconnected")
    idle = start_session(client, room="room-2", participant="bob")
    service.settle()

    page.goto(f"{base_url}/dashboard#token={token_of(READER)}")
    expect(page.locator("#total")).to_have_text("2")
    expect(page.locator("#by-state")).to_contain_text("connected")
    expect(page.locator("#by-state")).to_contain_text("idle")
    expect(page.locator("#rate")).to_have_text("100.0 %")
    expect(page.locator("#ttr")).to_contain_text("2000")  # p50 time to recover, in ms
    expect(page.locator("#sessions")).to_contain_text(idle[:8])
    page.locator("#sessions tr", has_text=recovered[:8]).click()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Reconnected")
    expect(timeline.locator("tr")).to_have_count(1 + 7)  # header + every stored event
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
