"""`clara-es simulate`: seeded faults through the application, invariants after every step."""

from __future__ import annotations

import json

import sqlalchemy as sa

from clara_es.adapters.store import Store
from clara_es.application import VoiceSessions
from clara_es.bootstrap import Root, read_settings
from clara_es.domain import commands
from clara_es.replay.faults import Fault, plan_for
from clara_es.replay.invariants import Invariants
from clara_es.replay.races import RaceKind, find_races
from clara_es.replay.scratch import scratch_store
from clara_es.replay.simulate import projections_match_rebuild, run_sessions, simulate
from clara_es.replay.verify import verify_sessions
from clara_es.replay.world import TimerWorker, crashes_of
from projections.catch_up import catch_up
from projections.db import engine, upgrade
from projections.views import VIEWS
from tests.support.cli_runner import clara_es
from tests.support.stores import AppFactory


class CarelessTimer(TimerWorker):
    """Test-only broken variant: a firing timer starts the session's current attempt,
    whatever attempt it was armed for (a duplicate of timer n starts attempt n+1 early)."""

    def attempt_for(self, index: int, armed: int) -> int:
        return self.world.app.session(self.world.ids[index]).attempt


def test_every_fault_injected_and_no_invariant_broken(store: Store) -> None:
    outcome = simulate(40, seed=7, steps=2, store=store)
    assert outcome.violations == []
    assert set(outcome.faults) == {str(f) for f in Fault}
    assert all(count > 0 for count in outcome.faults.values())
    assert outcome.projections_match_rebuild is True
    assert sum(outcome.final_states.values()) == 40
    assert {"connected", "failed"} <= set(outcome.final_states)


def test_views_that_differ_from_their_rebuild_are_reported(store: Store) -> None:
    """The check compares the views caught up with their rebuild: a row the catch-up got wrong
    (here, the status rows lost after the views reached the head) is seen."""
    simulate(6, seed=7, steps=1, store=store, check_projections=False)
    upgrade(store)
    catch_up(store)
    status = VIEWS["ui_state"].tables[0]
    views = engine(store)
    try:
        with views.begin() as conn:
            assert conn.execute(sa.delete(status)).rowcount == 6
    finally:
        views.dispose()
    assert projections_match_rebuild(store) is False


def test_a_run_is_the_same_whatever_the_shards(sqlite_store: Store) -> None:
    """Sessions are dealt to processes; one given store holds them all: the outcome is the
    same either way, the timer worker's crashes included (every shard replays them)."""
    sharded = simulate(120, seed=3, steps=2, check_projections=False)
    whole = simulate(120, seed=3, steps=2, store=sqlite_store, check_projections=False)
    assert sharded.faults[Fault.WORKER_CRASH] >= 2
    assert sharded.model_dump() == whole.model_dump()


def test_each_session_lives_the_same_steps_at_the_same_times_in_any_shard() -> None:
    """Step by step and to the millisecond: a session's run does not depend on the sessions
    that share its process (what --only and the shards rely on)."""
    plans = {i: plan_for(11, i, 3) for i in range(90)}
    crashes = crashes_of(plans.values())
    assert len(crashes) >= 2

    def traces(part: set[int]) -> dict[int, list[tuple[float, str]]]:
        others = [c for c in crashes if c.index not in part]
        with scratch_store("shard-test", expected_bytes=0) as store:
            world = run_sessions({i: plans[i] for i in part}, Root(read_settings(), store),
                                 TimerWorker, others)
        return {i: [(s.t, s.step) for s in steps] for i, steps in world.trace.items()}

    whole = traces(set(plans))
    thirds = {}
    for k in range(3):
        thirds.update(traces({i for i in plans if i % 3 == k}))
    assert thirds == whole
    assert any("process manager" in step for steps in whole.values() for _t, step in steps)


def test_a_seed_replays_exactly() -> None:
    first = simulate(25, seed=11, steps=2, check_projections=False)
    again = simulate(25, seed=11, steps=2, check_projections=False)
    assert (first.commands, first.faults, first.final_states) == (
        again.commands, again.faults, again.final_states
    )
    other = simulate(25, seed=12, steps=2, check_projections=False)
    assert (other.commands, other.faults) != (first.commands, first.faults)


def test_a_timer_that_ignores_its_attempt_is_caught_and_its_seed_reproduces_it() -> None:
    outcome = simulate(60, seed=7, steps=2, worker=CarelessTimer, check_projections=False)
    assert outcome.violations, "the broken timer went unnoticed"
    found = outcome.violations[0]
    assert found.violation.invariant == "no attempt before its timer"
    command = f"clara-es simulate --sessions 60 --seed 7 --steps 2 --only {found.session}"
    assert found.reproduce == command
    # The shortest trace ends with the duplicated timer starting the next attempt early.
    assert "fires again" in found.trace[-1].step
    assert len(found.trace) <= 8
    again = simulate(60, seed=7, steps=2, only=found.session, worker=CarelessTimer,
                     check_projections=False)
    assert [v.violation.invariant for v in again.violations] == ["no attempt before its timer"]
    assert again.violations[0].session == found.session
    fixed = simulate(60, seed=7, steps=2, only=found.session, check_projections=False)
    assert fixed.violations == []


def test_simulate_command_json_and_bad_only() -> None:
    result = clara_es("simulate", "--sessions", "20", "--seed", "7", "--json")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["violations"] == [] and outcome["sessions"] == 20
    assert outcome["faults"][Fault.DROP] == 60
    bad = clara_es("simulate", "--sessions", "20", "--seed", "7", "--only", "20")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "clara-es: error: --only 20: sessions are numbered 0 to 19"


def test_simulated_histories_re_run_the_same_and_show_every_race(sqlite_store: Store) -> None:
    simulate(40, seed=3, steps=2, store=sqlite_store, check_projections=False)
    app = VoiceSessions(sqlite_store.eventsourcing_env())
    try:
        checked, differences = verify_sessions(app)
        kinds = {race.kind for race in find_races(app)}
    finally:
        app.close()
    assert checked == 40 and differences == []
    assert kinds >= {RaceKind.LATE_TIMER, RaceKind.DUPLICATE_OUTAGE, RaceKind.CONCURRENT_WRITERS,
                     RaceKind.CLEANUP_VS_RECONNECT, RaceKind.WATCHDOG}


def test_a_final_session_is_reported_until_its_cleanup_outcome_is_stored(
    app: VoiceSessions,
) -> None:
    """The cleanup check counts the outcomes in the stored events it has checked and in those
    stored since its last look."""
    session_id = app.handle(commands.StartSession(room="r", participant="alice")).session_id
    app.handle(commands.EndSession(reason="user"), session_id)
    app.handle(commands.RequestCleanup.build(reason="test", command_id="c1"), session_id)
    invariants = Invariants(app)
    invariants.check(*invariants.read(session_id), [], None)
    violation = invariants.cleaned_up_once(session_id)
    assert violation is not None and "0 cleanup outcomes" in violation.message
    app.handle(commands.FinishCleanup(request_id="c1", outcome="cleaned", detail="ok"),
               session_id)
    assert invariants.cleaned_up_once(session_id) is None  # stored since the last look
    invariants.check(*invariants.read(session_id), [], None)
    assert invariants.cleaned_up_once(session_id) is None


def test_the_checker_checks_every_stored_event_when_another_writer_appends(
    make_app: AppFactory,
) -> None:
    """The checker takes what its application saved, and reads the store for what another
    writer put between: none of the session's events is skipped."""
    app, other = make_app(), make_app()
    invariants = Invariants(app)
    session_id = app.handle(commands.StartSession(room="r", participant="alice")).session_id
    session, new = invariants.read(session_id)
    assert [e.originator_version for e in new] == [1]
    invariants.check(session, new, [], None)
    other.handle(commands.Connect(), session_id)
    app.handle(commands.MarkConnected(), session_id)
    session, new = invariants.read(session_id)
    assert [e.originator_version for e in new] == [2, 3]
    assert session.state == app.session(session_id).state == "connected"
