"""Log lines: key=value by default, JSON lines on request, and `serve` shows the process
manager's lines (detection, restarts, cleanup) like `run` does."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from fastapi.testclient import TestClient

from clara_es.cli import cli
from clara_es.cli import serve as serve_command
from clara_es.http.auth import Role, mint
from clara_es.logs import configure_logging
from tests.support.settings import count_settings

API_KEY = "test-key"
API_SECRET = "test-secret-that-is-long-enough-for-hs256"
WORKER = "clara_es.process.worker"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _cleanup_line(session: str = "s-1") -> None:
    logging.getLogger(WORKER).info(
        "event=cleanup session=%s room=%s participant=%s outcome=%s detail=%r",
        session, "r1", "bob", "skipped", "cleanup skipped: no LiveKit configured",
    )


def test_key_value_lines_keep_the_stdlib_message_as_it_was(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("kv", "info")
    _cleanup_line()
    logging.getLogger("clara_es.other").debug("event=hidden")  # below the level
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("timestamp=")
    assert f" level=info logger={WORKER} event=cleanup session=s-1 room=r1 participant=bob " \
           "outcome=skipped detail='cleanup skipped: no LiveKit configured'" in lines[0]


def test_json_lines_carry_the_message_as_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    _cleanup_line()
    try:
        raise RuntimeError("pipeline gone")
    except RuntimeError:
        logging.getLogger(WORKER).exception("event=job_failed session=%s kind=%s", "s-1",
                                            "restart")
    cleanup, failed = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert {k: cleanup[k] for k in ("level", "logger", "event", "session", "outcome", "detail")} \
        == {"level": "info", "logger": WORKER, "event": "cleanup", "session": "s-1",
            "outcome": "skipped", "detail": "cleanup skipped: no LiveKit configured"}
    assert "timestamp" in cleanup
    assert (failed["level"], failed["event"], failed["kind"]) == ("error", "job_failed",
                                                                  "restart")
    assert "RuntimeError: pipeline gone" in failed["exception"]


class _Seen(logging.Handler):
    """Sets an event when the process manager logs a cleanup."""

    def __init__(self) -> None:
        super().__init__()
        self.cleaned = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("event=cleanup "):
            self.cleaned.set()


@pytest.mark.parametrize("log_format", ["kv", "json"])
def test_serve_logs_the_process_managers_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
    log_format: str,
) -> None:
    """`clara-es serve` in this process, its socket swapped for a test client: an ended
    session is cleaned up by the process manager running inside serve, and the manager's
    `event=cleanup` line is in serve's log output."""
    seen = _Seen()
    worker_log = logging.getLogger(WORKER)
    monkeypatch.setattr(worker_log, "handlers", [*worker_log.handlers, seen])
    # The test's own handler hears the manager whatever serve configures.
    worker_log.setLevel(logging.INFO)
    request.addfinalizer(lambda: worker_log.setLevel(logging.NOTSET))
    settings_read = count_settings(monkeypatch)
    session: dict[str, str] = {}

    def drive(server: serve_command.ClosingServer) -> None:
        headers = {"Authorization": "Bearer " + mint(API_KEY, API_SECRET, Role.AGENT, "agent",
                                                     "r1")}
        with TestClient(server.config.app, headers=headers) as http:  # runs the lifespan
            started = http.post("/api/sessions", json={"room": "r1", "participant": "bob"})
            session["id"] = started.json()["session_id"]
            for name in ("connect", "connected", "end"):
                response = http.post(f"/api/sessions/{session['id']}/{name}", json={})
                assert response.status_code == 200, response.text
            assert seen.cleaned.wait(timeout=60), "the process manager did not clean up"

    monkeypatch.setattr(serve_command.ClosingServer, "run", drive)
    env = {
        "CLARA_ES_LIVEKIT_API_KEY": API_KEY, "CLARA_ES_LIVEKIT_API_SECRET": API_SECRET,
        "CLARA_ES_LIVEKIT_URL": None, "CLARA_ES_POLL_INTERVAL_S": "0.01",
        "CLARA_ES_LOG_FORMAT": log_format,
        # --db wins: this URL would not even open.
        "CLARA_ES_DATABASE_URL": "mysql://nobody@127.0.0.1/elsewhere",
    }
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "serve.db")], env=env)
    assert result.exit_code == 0, result.output
    assert len(settings_read) == 1
    expected = (f"event=cleanup session={session['id']} room=r1 participant=bob "
                "outcome=skipped")
    if log_format == "kv":
        assert expected in result.stderr
        assert "event=livekit_not_configured" in result.stderr
    else:
        records = [json.loads(line) for line in result.stderr.splitlines()
                   if line.startswith("{")]
        cleanups = [r for r in records if r.get("event") == "cleanup"]
        assert [(r["logger"], r["session"], r["outcome"]) for r in cleanups] \
            == [(WORKER, session["id"], "skipped")]
        assert expected not in result.stderr
