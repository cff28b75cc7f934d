"""Session commands on the real stores: two writers of one session, and a second process
reading a long stream back through snapshots."""

from __future__ import annotations

import threading

from clara_es.application import VoiceSessions, session_history
from clara_es.domain import Actor, ConnectionState, commands
from tests.support.apps import AppFactory
from tests.support.scenarios import connected as connected_session


def test_client_and_agent_report_one_outage_at_once(make_app: AppFactory) -> None:
    """Two processes' worth of writers (two applications, two connection pools) race.

    Both read the connected session before either appends; the store lets one append and
    rejects the other, which re-reads and records SignalIgnored: one outage, one schedule.
    """
    client_app, agent_app = make_app(), make_app()
    session_id = connected_session(client_app)
    barrier = threading.Barrier(2, timeout=10)
    waited: set[str] = set()

    def save_after_both_decided(app: VoiceSessions, name: str) -> None:
        original = app.save

        def save(*objs: object) -> object:
            if name not in waited:
                waited.add(name)
                barrier.wait()
            return original(*objs)

        app.save = save  # type: ignore[method-assign]

    save_after_both_decided(client_app, "client")
    save_after_both_decided(agent_app, "agent")
    errors: list[BaseException] = []

    def report(app: VoiceSessions, actor: Actor) -> None:
        try:
            saw_it = commands.ReportDisconnected(reason=f"{actor} saw it", actor=actor)
            app.handle(saw_it, session_id)
        except BaseException as exc:  # pragma: no cover - surfaced by the assert below
            errors.append(exc)

    threads = [
        threading.Thread(target=report, args=(client_app, Actor.CLIENT)),
        threading.Thread(target=report, args=(agent_app, Actor.AGENT)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert client_app.conflicts_retried + agent_app.conflicts_retried == 1
    entries = session_history(client_app, session_id)
    assert [e.type for e in entries[-3:]] == ["Disconnected", "ReconnectScheduled", "SignalIgnored"]
    winner, loser = entries[-3], entries[-1]
    assert {winner.actor, loser.actor} == {"client", "agent"}
    # The loser decided twice: first on the version both read, then on the winner's result.
    assert loser.cause["read_version"] == winner.version + 1
    assert winner.cause["read_version"] == winner.version - 1


def test_long_stream_reads_back_through_snapshots(make_app: AppFactory) -> None:
    writer = make_app()
    session_id = connected_session(writer)
    for _ in range(130):  # past the snapshot interval
        writer.handle(commands.ReportDisconnected(), session_id)
        writer.handle(commands.ReportReconnected(), session_id)
    reader = make_app()
    state = reader.status(session_id)
    assert state.connection_state == ConnectionState.CONNECTED
    assert state.version == 3 + 130 * 3
    assert len(session_history(reader, session_id)) == state.version
