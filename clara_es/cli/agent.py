"""`clara-es agent --room NAME`: the agent's monitor on a real LiveKit room.

Joins the room given by CLARA_ES_LIVEKIT_URL with a token it mints from the API key and
secret, waits for the user's participant, and records the room's events on that user's
session (the latest one for the room and identity, or a new one) until the session ends or
the agent is stopped with Ctrl-C.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import click
from livekit import rtc

from clara_es.adapters.livekit import AgentMonitor, AsyncSystemClock, RoomIndex, UnknownRoom
from clara_es.adapters.livekit.tokens import agent_token
from clara_es.application import VoiceSessions
from clara_es.cli import native_threads_started
from clara_es.cli.common import CommandError, console, db_option, json_option, open_app, root_for
from clara_es.domain import Actor, UIState
from clara_es.domain.commands import ReportParticipantJoined, StartSession
from clara_es.domain.session import FINAL_STATES


@click.command()
@click.option("--room", "room_name", required=True, help="The LiveKit room to join.")
@click.option("--participant", help="Identity of the user to watch (default: the first to join).")
@click.option("--identity", default="clara-agent", show_default=True,
              help="The agent's own identity in the room.")
@db_option
@json_option
def agent(
    room_name: str, participant: str | None, identity: str, db: Path | None, as_json: bool,
) -> None:
    """Join a LiveKit room as the agent and record the user's connection on its session.

    The process manager of `run` or `serve` decides what the facts call for."""
    root = root_for(db)
    settings = root.settings
    missing = [
        f"CLARA_ES_{name.upper()}"
        for name in ("livekit_url", "livekit_api_key", "livekit_api_secret")
        if not getattr(settings, name)
    ]
    if missing:
        raise CommandError(f"the agent needs a LiveKit server: set {', '.join(missing)}")
    if not room_name.strip():
        raise CommandError("--room needs a room name")
    assert settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret
    token = agent_token(
        settings.livekit_api_key, settings.livekit_api_secret, room_name, identity
    )
    root.configure_logging()
    with open_app(root, create=True) as app:
        asyncio.run(
            _run(app, settings.livekit_url, token, room_name, participant, as_json)
        )


async def _run(
    app: VoiceSessions, url: str, token: str, room_name: str, wanted: str | None,
    as_json: bool,
) -> None:
    native_threads_started()
    room = rtc.Room()
    joined: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

    def on_joined(p: rtc.RemoteParticipant) -> None:
        if not joined.done() and (wanted is None or p.identity == wanted):
            joined.set_result(p)

    room.on("participant_connected", on_joined)
    try:
        await room.connect(url, token)
    except rtc.ConnectError as exc:
        raise CommandError(f"cannot join room {room_name!r} at {url}: {exc.message}") from None
    try:
        for p in room.remote_participants.values():
            on_joined(p)
        _say(f"joined {room_name!r}; waiting for {wanted or 'a participant'}", as_json)
        user = await joined
        room.off("participant_connected", on_joined)
        session_id = session_for(app, room_name, user.identity)
        done = asyncio.Event()

        def show(state: UIState) -> None:
            _show(state, as_json)
            if state.connection_state in FINAL_STATES:
                done.set()

        monitor = AgentMonitor(app, session_id, AsyncSystemClock(), on_change=show)
        monitor.attach(room)
        room.on("disconnected", lambda reason: done.set())
        show(app.handle(ReportParticipantJoined(), session_id))
        await done.wait()
        monitor.detach()
    finally:
        await room.disconnect()


def session_for(app: VoiceSessions, room: str, identity: str) -> UUID:
    """The user's latest session in the room, unless it is over: then a new one."""
    try:
        latest = RoomIndex(app).sessions(room, identity)
    except UnknownRoom:
        latest = []
    if latest and app.status(latest[0]).connection_state not in FINAL_STATES:
        return latest[0]
    return app.handle(
        StartSession(room=room, participant=identity, actor=Actor.AGENT)
    ).session_id


def _say(text: str, as_json: bool) -> None:
    if not as_json:
        console.print(text)


def _show(state: UIState, as_json: bool) -> None:
    if as_json:
        click.echo(state.model_dump_json())
    else:
        console.print(
            f"{state.updated_at:%H:%M:%S.%f}"[:-3]
            + f"  v{state.version:<4} {state.participant}: {state.status_text}"
        )
