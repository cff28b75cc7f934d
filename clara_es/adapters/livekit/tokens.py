"""Access tokens for joining a room, minted with livekit-api's AccessToken."""

from __future__ import annotations

from datetime import timedelta

from livekit import api


def agent_token(
    api_key: str, api_secret: str, room: str, identity: str, ttl: timedelta = timedelta(hours=6)
) -> str:
    """A token that lets the agent join `room` as `identity` (participant kind "agent")."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_kind("agent")
        .with_grants(api.VideoGrants(room_join=True, room=room, agent=True))
        .with_ttl(ttl)
        .to_jwt()
    )
