"""The browser module /static/clara-es-client.js in Chromium: what a client reports while its
network is down is shown at once and kept in the outbox, survives a reload, and reaches the
service exactly once when the network is back; its rules are the service's."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from clara_es.domain import (
    FAILURE_TEXT,
    BackoffPolicy,
    InvalidTransition,
    Signal,
    VoiceSession,
    ui_state,
)
from clara_es.domain.commands import ROUTES
from clara_es.domain.signal import Actor
from clara_es.http.app import STATIC
from clara_es.http.auth import Role
from tests.support.http_service import bearer, token
from tests.support.outages import at, attempt_delays, first_of_key, signals_by_key
from tests.support.served import served
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

# The app's own files: an Electron app (or an installed web app) has them without a network.
APP_FILES = {"/": "text/html", "/static/common.js": "text/javascript",
             "/static/status.js": "text/javascript",
             "/static/clara-es-client.js": "text/javascript",
             "/static/clara-es-rules.js": "text/javascript", "/static/style.css": "text/css"}
# The room the app connects: it fails while the browser is offline.
SIMULATED_ROOM = ("window.claraReconnect = async () => "
                  "navigator.onLine ? null : 'network unreachable';")
OUTBOX = "(id) => JSON.parse(localStorage.getItem('clara-es:facts:' + id) || '[]')"


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with served(tmp_path / "service.db") as url:
        yield url


# Offline, the page's requests fail at once, whatever Chromium's offline emulation lets
# through (under load it let a request that was already leaving reach the service, so an
# "offline" fact was recorded while the page kept it as undelivered). A flag in
# localStorage: it holds across a reload, as being offline does.
FETCH_OFFLINE = """
const realFetch = window.fetch.bind(window);
window.fetch = (...args) => localStorage.getItem('test:offline') === '1'
  ? Promise.reject(new TypeError('Failed to fetch (offline)')) : realFetch(...args);
"""


def app_files_offline(page: Any, url: str) -> Callable[[bool], None]:
    """Serve the page and its scripts to the browser from what was fetched while online.
    Returns the switch of the network: the browser's offline mode (its `online` and
    `offline` events, `navigator.onLine`) and the page's requests failing while offline."""
    fetched = {path: httpx.get(url + path) for path in APP_FILES}
    assert {path: r.status_code for path, r in fetched.items()} == dict.fromkeys(APP_FILES, 200)
    files = {path: r.content for path, r in fetched.items()}

    def fulfil(route: Any) -> None:
        path = "/" + route.request.url.split("/", 3)[3].split("?")[0].split("#")[0]
        if path in files:
            route.fulfill(body=files[path], content_type=APP_FILES[path])
        else:
            route.continue_()

    def network(online: bool) -> None:
        page.evaluate("(off) => localStorage.setItem('test:offline', off ? '1' : '0')",
                      not online)
        page.context.set_offline(not online)

    page.add_init_script(FETCH_OFFLINE)
    page.route(f"{url}/**", fulfil)
    return network


def history(url: str, session_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/sessions/{session_id}/history", headers=bearer(Role.CLIENT))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_offline_facts_show_at_once_survive_a_reload_and_arrive_exactly_once(
    url: str, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    network = app_files_offline(page, url)
    page.add_init_script(SIMULATED_ROOM)
    page.goto(f"{url}/#token={token(Role.CLIENT)}")
    status, button = page.locator("#status-text"), page.locator("#start")
    body = page.locator("body")
    button.click()
    expect(status).to_have_text("Connecting...")
    page.evaluate("claraClient.connected()")
    expect(status).to_have_text("Connected")
    expect(body).to_have_attribute("data-pending", "0")
    session_id = page.evaluate("claraClient.sessionId")
    wait_until(lambda: "Connected" in [r["type"] for r in history(url, session_id)],
               what="the history view to show the connection")

    # The network goes: every fact from here on is decided and shown here, and kept.
    network(False)
    page.evaluate("claraClient.disconnected('wifi off')")
    expect(status).to_have_text("Reconnecting... (attempt 1 of 5)")
    expect(button).to_be_disabled()
    expect(status).to_have_text("Reconnecting... (attempt 2 of 5)")  # attempt 1 failed, offline
    page.screenshot(path=tmp_path / "offline.png")
    kept = page.evaluate(f"({OUTBOX})('{session_id}')")
    waiting = [f["type"] for f in kept if f["delivered_status"] is None]
    assert waiting[:3] == ["disconnected", "attempt-started", "attempt-failed"]
    assert int(body.get_attribute("data-pending") or 0) >= 3
    assert "Disconnected" not in [r["type"] for r in history(url, session_id)]

    page.reload()  # still offline: the app's files are local, the outbox is in localStorage
    expect(status).to_contain_text("Reconnecting... (attempt ")
    after = page.evaluate(f"({OUTBOX})('{session_id}')")
    assert [f["idempotency_key"] for f in after][:len(kept)] == [
        f["idempotency_key"] for f in kept]
    assert int(body.get_attribute("data-pending") or 0) >= 3
    assert "Disconnected" not in [r["type"] for r in history(url, session_id)]

    network(True)  # `online`: the outbox is flushed; the next attempt connects
    expect(status).to_have_text("Connected", timeout=30_000)
    expect(body).to_have_attribute("data-pending", "0")
    facts = page.evaluate(f"({OUTBOX})('{session_id}')")
    assert {f["delivered_status"] for f in facts} == {200}
    rows = wait_until(lambda: (h := history(url, session_id)) and h[-1]["type"] == "Reconnected"
                      and h, what="the history view to show the recovery")

    recorded = signals_by_key(rows)
    for fact in facts:
        assert len(recorded[fact["idempotency_key"]]) == 1, fact  # exactly once
        row = first_of_key(rows, fact["idempotency_key"])
        assert row["cause"]["name"] == ROUTES[fact["type"]].name
        assert abs(at(row) - datetime.fromisoformat(fact["occurred_at"])) < timedelta(seconds=1)
    delays = attempt_delays(rows)
    assert len(delays) >= 2
    for attempt, measured, scheduled in delays:
        assert scheduled == 2 ** (attempt - 1)
        # Each batch is corrected by its own measured clock offset (milliseconds of transit).
        assert scheduled - 0.05 <= measured < scheduled + 1, (attempt, measured)

    # An answer lost on the way back: the page sends everything again, the service keeps it once.
    version = page.evaluate("claraClient.serviceState.version")
    page.evaluate(f"""(id) => {{
        const facts = ({OUTBOX})(id).map((f) => ({{ ...f, delivered_status: null }}));
        localStorage.setItem('clara-es:facts:' + id, JSON.stringify(facts));
    }}""", session_id)
    assert page.evaluate("claraClient.flush()") is True
    assert page.evaluate("claraClient.serviceState.version") == version
    assert page.evaluate(f"({OUTBOX})('{session_id}').every((f) => f.delivered_status === 200)")


def test_the_online_event_alone_delivers_what_waits(url: str, page: Any) -> None:
    """No retry timer and no reconnecting room: only the window's `online` event sends."""
    page.goto(f"{url}/static/style.css")  # the service's origin
    session_id = page.evaluate("""async (token) => {
        const m = await import('/static/clara-es-client.js');
        window.lone = await m.ClaraClient.start(
            { token, room: 'room-1', participant: 'alice', retryEveryMs: 0 });
        lone.connect(); lone.connected();
        await lone.flush();
        return lone.sessionId;
    }""", token(Role.CLIENT))
    page.context.set_offline(True)
    page.evaluate("lone.disconnected('wifi off')")
    assert page.evaluate("lone.flush()") is False
    assert page.evaluate("lone.state.pending") == 1
    assert page.evaluate("lone.lastError")  # why it waits, for the page to say
    page.context.set_offline(False)
    page.wait_for_function("lone.state.pending === 0")
    assert page.evaluate("lone.serviceState.status_text") == "Reconnecting... (attempt 1 of 5)"
    rows = wait_until(lambda: (h := history(url, session_id)) and
                      "ReconnectScheduled" in [r["type"] for r in h] and h,
                      what="the history view to show the outage")
    assert [r["type"] for r in rows].count("Disconnected") == 1

    # The next session's start forgets this one: the service has answered for all of it.
    page.evaluate("""async (token) => {
        const m = await import('/static/clara-es-client.js');
        await m.ClaraClient.start({ token, room: 'room-1', participant: 'alice' });
    }""", token(Role.CLIENT))
    assert page.evaluate(f"({OUTBOX})('{session_id}')") == []


# ---- the module decides as the service does -----------------------------------------------------

CLIENT_FACTS = ["connect", "connected", "disconnected", "resume-started", "attempt-started",
                "attempt-failed", "reconnected", "end"]


def walk(seed: int, steps: int) -> list[tuple[str, dict[str, Any], int]]:
    """Random client facts (type, body, ms after the start), attempts mostly the due one."""
    rng, t, out = random.Random(seed), 0, []
    for _ in range(steps):
        kind = rng.choice(CLIENT_FACTS)
        t += rng.choice([0, 200, 1000, 3000, 20_000])
        body: dict[str, Any] = {}
        if kind in ("attempt-started", "attempt-failed"):
            body["attempt"] = rng.choice([1, 1, 2, 3, 4, 5, 6])
        if kind == "attempt-failed":
            body["error"] = "unreachable"
        if kind in ("disconnected", "end"):
            body["reason"] = "network"
        out.append((kind, body, t))
    return out


def spec_outage() -> list[tuple[str, dict[str, Any], int]]:
    """The spec's long outage: five attempts at 1, 2, 4, 8, 16 s fail, then Start again."""
    facts: list[tuple[str, dict[str, Any], int]] = [
        ("connect", {}, 0), ("connected", {}, 500), ("disconnected", {"reason": "wifi"}, 1000)]
    t = 1000
    for n in range(1, 6):
        t += 1000 * 2 ** (n - 1)
        facts += [("attempt-started", {"attempt": n}, t),
                  ("attempt-failed", {"attempt": n, "error": "unreachable"}, t + 100)]
        t += 100
    return [*facts, ("reconnected", {}, t + 1), ("connect", {}, t + 2), ("end", {}, t + 3)]


def python_states(facts: list[tuple[str, dict[str, Any], int]]) -> list[dict[str, Any] | str]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    session = VoiceSession.start("room-1", "alice", BackoffPolicy(),
                                 Signal(name="start", actor=Actor.CLIENT, at=start))
    out: list[dict[str, Any] | str] = []
    for kind, body, ms in facts:
        command = ROUTES[kind].build(**body)
        signal = Signal(name=command.name, actor=Actor.CLIENT,
                        at=start + timedelta(milliseconds=ms), args=command.args())
        try:
            command.decide(session, signal)
        except InvalidTransition:
            out.append("refused")
            continue
        state = ui_state(session)
        out.append({"connection_state": str(state.connection_state),
                    "status_text": state.status_text, "start_enabled": state.start_enabled,
                    "attempt": state.attempt, "max_attempts": state.max_attempts,
                    "next_retry_at": state.next_retry_at})
    return out


BROWSER_STATES = """async (facts) => {
  const m = await import('/static/clara-es-client.js');
  const start = Date.parse('2026-01-01T00:00:00Z');
  const session = new m.LocalSession({ session_id: 's', room: 'room-1', participant: 'alice',
    policy: {}, started_at: new Date(start).toISOString() });
  return facts.map(([kind, body, ms]) => {
    try { session.decide(kind, body, start + ms); }
    catch (e) { if (e instanceof m.InvalidTransition) return 'refused'; throw e; }
    const s = session.uiState();
    return { connection_state: s.connection_state, status_text: s.status_text,
      start_enabled: s.start_enabled, attempt: s.attempt, max_attempts: s.max_attempts,
      next_retry_at: s.next_retry_at };
  });
}"""


def test_the_browser_module_decides_every_client_fact_as_the_service_does(page: Any) -> None:
    def fulfil(route: Any) -> None:
        if "/static/" in route.request.url:  # the module and the rules it imports, as installed
            name = route.request.url.rsplit("/", 1)[1]
            route.fulfill(body=(STATIC / name).read_text(), content_type="text/javascript")
        else:
            route.fulfill(body="<!doctype html><title>rules</title>", content_type="text/html")

    page.route("http://clara.test/**", fulfil)
    page.goto("http://clara.test/")
    walks = [spec_outage(), *(walk(seed, 60) for seed in range(40))]
    for facts in walks:
        browser = page.evaluate(BROWSER_STATES, [list(f) for f in facts])
        for step, (mine, theirs) in enumerate(zip(browser, python_states(facts), strict=True)):
            if isinstance(mine, dict) and mine["next_retry_at"] is not None:
                mine["next_retry_at"] = datetime.fromisoformat(mine["next_retry_at"])
            assert mine == theirs, (step, facts[: step + 1])
    shown = {s["status_text"] for facts in walks
             for s in python_states(facts) if isinstance(s, dict)}
    assert {"Connected", "Reconnecting...", "Reconnecting... (attempt 5 of 5)",
            FAILURE_TEXT, "Session ended"} <= shown  # the walks reach every text
