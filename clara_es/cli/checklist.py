"""The spec's verification checklist (seed section 9), checked on a demo run's histories:
each step, what was checked, the figure that shows it, and whether it held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clara_es.application import HistoryEntry
from clara_es.demo import DemoRun, DemoSession
from clara_es.domain import FAILURE_TEXT


@dataclass(frozen=True)
class Check:
    step: int
    checked: str
    figure: str
    passed: bool


def _events(run: DemoRun, session: DemoSession) -> list[HistoryEntry]:
    return [e for s, e in run.timeline if s.session_id == session.session_id]


def _first(events: list[HistoryEntry], kind: str) -> HistoryEntry | None:
    return next((e for e in events if e.type == kind), None)


def _seconds(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.3f} s"


def checklist(run: DemoRun) -> list[Check]:
    short, long = run.sessions[0], run.sessions[1]
    a, b = _events(run, short), _events(run, long)
    a_connected, a_down = _first(a, "Connected"), _first(a, "Disconnected")
    a_back = _first(a, "Reconnected")
    a_texts = [e.state.status_text for e in a]
    b_down, b_failed = _first(b, "Disconnected"), _first(b, "Failed")
    attempts = sum(1 for e in b if e.type == "ReconnectAttemptFailed")
    restarts = [e for e in a if e.type == "PipelineRestarted"]
    recovered = _seconds(a_down and a_down.occurred_at, a_back and a_back.occurred_at)
    cleanup = next((e for e in b if e.type in ("SessionCleanedUp", "CleanupSkipped",
                                               "CleanupFailed")), None)
    return [
        Check(1, "session A starts and is connected",
              f"Connected at v{a_connected.version}" if a_connected else "never connected",
              a_connected is not None),
        Check(2, "a network interruption is recorded",
              f"Disconnected at v{a_down.version}" if a_down else "no Disconnected",
              a_down is not None),
        Check(3, 'the status text turns "Reconnecting..."',
              next((t for t in a_texts if t.startswith("Reconnecting...")), "never shown"),
              any(t.startswith("Reconnecting...") for t in a_texts)),
        Check(4, "the network returns after the 5-second drop",
              f"reconnected {recovered} after the drop", a_back is not None),
        Check(5, 'A reconnects by itself and shows "Connected"',
              f"final state {short.final_state}, text {a_texts[-1]!r}" if a_texts else "-",
              str(short.final_state) == "connected" and a_texts[-1:] == ["Connected"]),
        Check(6, "session B loses the network for 40 seconds",
              f"Disconnected at v{b_down.version}" if b_down else "no Disconnected",
              b_down is not None),
        Check(7, "B fails after its attempts, with the failure text",
              f"{attempts} attempts failed, failed "
              f"{_seconds(b_down and b_down.occurred_at, b_failed and b_failed.occurred_at)} "
              "after the drop",
              b_failed is not None and b_failed.state.status_text == FAILURE_TEXT
              and b_failed.state.start_enabled),
        Check(8, "the server saw the poor connection and cleaned B up",
              f"{len(restarts)} pipeline restarts on A; B: "
              f"{cleanup.type if cleanup else 'no cleanup'}",
              bool(restarts) and cleanup is not None and cleanup.type != "CleanupFailed"),
    ]
