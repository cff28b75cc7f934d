"""Timers that fall due together: their commands saved in one go, each decided as alone."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.persistence import IntegrityError

from clara_es.application import VoiceSessions
from clara_es.domain import ConnectionState, SessionNotFound, commands
from tests.support.scenarios import connected


def test_commands_on_many_sessions_are_decided_as_one_by_one(app: VoiceSessions) -> None:
    first, second = connected(app), connected(app)
    missing = uuid4()
    outcomes = app.handle_all([
        (commands.ReportDisconnected(reason="network"), first),
        (commands.ReportDisconnected(reason="network"), missing),
        (commands.ReportDisconnected(reason="network"), second),
        (commands.ReportReconnected(), first),  # the same session again: after the save
    ])
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], SessionNotFound)
    assert app.status(second).connection_state == ConnectionState.RECONNECTING
    assert app.status(first).connection_state == ConnectionState.CONNECTED


def test_a_lost_race_falls_back_to_each_command_alone(app: VoiceSessions) -> None:
    first, second = connected(app), connected(app)
    save = app.save
    calls = []

    def racing_save(*aggregates: object, **kwargs: object) -> object:
        calls.append(len(aggregates))
        if len(aggregates) > 1:  # another writer appended to one of them first
            app.handle(commands.ReportDisconnected(reason="other writer"), first)
            raise IntegrityError("position taken")
        return save(*aggregates, **kwargs)

    app.save = racing_save  # type: ignore[method-assign]
    outcomes = app.handle_all([(commands.ReportReconnected(), first),
                               (commands.ReportDisconnected(reason="network"), second)])
    assert outcomes == [None, None]
    # decided again on the other writer's fact (on the stale read it was refused)
    assert app.status(first).connection_state == ConnectionState.CONNECTED
    assert app.status(second).connection_state == ConnectionState.RECONNECTING
    assert calls[0] == 2
