"""`clara-es races`: the races of DESIGN.md section 3, found in stored histories."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.domain import VirtualClock
from clara_es.replay.races import RaceKind, find_races, session_ids
from tests.support.cli_runner import clara_es
from tests.support.scenarios import racy_sessions


def test_each_race_is_found_where_it_happened(make_app: Any, clock: VirtualClock) -> None:
    app = make_app()
    racy = racy_sessions(app, make_app(), clock)
    found = {(r.session_id, r.kind) for r in find_races(app)}
    assert found == {
        (racy.duplicate_outage, RaceKind.DUPLICATE_OUTAGE),
        (racy.duplicate_outage, RaceKind.CONCURRENT_WRITERS),
        (racy.late_timer, RaceKind.LATE_TIMER),
        (racy.success_after_failure, RaceKind.SUCCESS_AFTER_FAILURE),
        (racy.cleanup_vs_reconnect, RaceKind.CLEANUP_VS_RECONNECT),
        (racy.watchdog, RaceKind.WATCHDOG),
    }
    late = find_races(app, [racy.late_timer])
    assert [(r.version, r.explanation) for r in late] == [
        (8, "attempt_started: stale timer: attempt 1 fired, current is 2")
    ]
    ended = find_races(app, [racy.cleanup_vs_reconnect])
    assert [r.version for r in ended] == [6, 7]  # SessionEnded while reconnecting, late success
    assert "stays failed" in find_races(app, [racy.success_after_failure])[0].resolution


def test_sessions_are_listed_from_the_log_in_start_order(
    make_app: Any, clock: VirtualClock
) -> None:
    app = make_app()
    racy = racy_sessions(app, make_app(), clock)
    assert list(session_ids(app)) == [
        racy.duplicate_outage, racy.late_timer, racy.success_after_failure,
        racy.cleanup_vs_reconnect, racy.watchdog, racy.quiet,
    ]


def test_races_command_json_and_since(sqlite_store: Store, tmp_path: Any) -> None:
    clock = VirtualClock()
    app = VoiceSessions(sqlite_store.eventsourcing_env(), clock=clock)
    other = VoiceSessions(sqlite_store.eventsourcing_env(), clock=clock)
    try:
        racy = racy_sessions(app, other, clock)
        watchdog_at = find_races(app, [racy.watchdog])[0].occurred_at
    finally:
        app.close()
        other.close()
    db = str(sqlite_store.sqlite_path)
    everything = clara_es("races", "--json", "--db", db)
    assert everything.returncode == 0, everything.stderr
    assert len(json.loads(everything.stdout)) == 7
    since = (watchdog_at - timedelta(milliseconds=1)).isoformat()
    recent = clara_es("races", "--since", since, "--json", "--db", db)
    assert [r["kind"] for r in json.loads(recent.stdout)] == [RaceKind.WATCHDOG.value]
    one = clara_es("races", str(racy.late_timer), "--db", db)
    assert one.returncode == 0, one.stderr
    assert "late timer" in one.stdout and "1 races in 1 sessions" in one.stdout
    table = clara_es("replay", str(racy.late_timer), "--db", db)
    assert table.returncode == 0, table.stderr
    assert (
        "! v8 late timer: attempt_started: stale timer: attempt 1 fired, current is 2; "
        "a no-op" in table.stdout
    )
