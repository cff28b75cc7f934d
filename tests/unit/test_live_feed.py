"""A live feed sends each version of its session once, in order, whichever way the new events
reach it: handed over with the append, handed over twice (this process's append heard again
through the log follower), or out of order (then the missing versions are read from the store);
and every feed of a session gets every version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

from clara_es.application import VoiceSessions
from clara_es.domain import commands
from clara_es.http.sse import Changes, Follower, feed
from tests.support.scenarios import connected

HOUR = 3600.0


def versions(chunk: bytes) -> list[int]:
    return [int(line[4:]) for line in chunk.split(b"\n") if line.startswith(b"id: ")]


async def until(stream: AsyncIterator[bytes], last: int) -> list[int]:
    seen: list[int] = []
    while not seen or seen[-1] < last:
        seen += versions(await asyncio.wait_for(anext(stream), 10))
    return seen


def outage(app: VoiceSessions, session_id: UUID) -> None:
    app.handle(commands.ReportDisconnected(reason="network"), session_id)
    app.handle(commands.StartAttempt(attempt=1), session_id)


def test_delivered_events_are_sent_once_in_order_and_a_gap_is_read_from_the_store(
    app: VoiceSessions,
) -> None:
    session_id = connected(app)
    start = app.session(session_id).version

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        changes = Changes()
        changes.bind(asyncio.get_running_loop())
        one = feed(app, changes, session_id, None, HOUR)
        two = feed(app, changes, session_id, None, HOUR)
        opened = versions(await anext(one)) + versions(await anext(two))
        outage(app, session_id)
        new = app.events_after(session_id, start)
        assert len(new) >= 3
        changes.publish(new[:1])
        changes.publish(new[:1])  # heard again: nothing sent twice
        changes.publish(new[2:])  # one version missing before these
        last = new[-1].originator_version
        return opened, await until(one, last), await until(two, last)

    opened, one, two = asyncio.run(scenario())
    assert opened == [start, start]
    expected = list(range(start + 1, app.session(session_id).version + 1))
    assert one == expected
    assert two == expected


def test_a_feed_resuming_from_an_old_version_gets_every_version_after_it(
    app: VoiceSessions,
) -> None:
    session_id = connected(app)

    async def scenario() -> list[int]:
        changes = Changes()
        changes.bind(asyncio.get_running_loop())
        outage(app, session_id)
        resumed = feed(app, changes, session_id, 1, HOUR)
        return await until(resumed, app.session(session_id).version)

    assert asyncio.run(scenario()) == list(range(2, app.session(session_id).version + 1))


def test_a_follower_reads_only_the_versions_after_its_own(app: VoiceSessions) -> None:
    session_id = connected(app)
    follower = Follower.after(app, session_id, 2)
    states = follower.newer()
    assert [s.version for s in states] == list(range(3, app.session(session_id).version + 1))
    assert states[-1].connection_state == app.status(session_id).connection_state
