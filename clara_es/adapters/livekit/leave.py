"""Why a LiveKit connection ended, and whether the session should reconnect: one table, used
by the client (its room's `disconnected`) and the agent (a participant's `disconnect_reason`,
webhooks).

From LiveKit's own DisconnectReason (livekit/protocol models.proto; rtc 1.2's
`rtc.DisconnectReason`). A reason that says the user or the server meant the participant to be
gone ends the session: reconnecting would join a room they were taken out of, or fight the
other device that took over the identity. Anything that says the transport or the server
instance failed (SIGNAL_CLOSE, SERVER_SHUTDOWN, MIGRATION, STATE_MISMATCH, JOIN_FAILURE,
CONNECTION_TIMEOUT, MEDIA_FAILURE, UNKNOWN_REASON...) is an outage: a new connection can work,
which is what livekit-client does for them (a full reconnect to the room, not a resume).
"""

from __future__ import annotations

from livekit import rtc

R = rtc.DisconnectReason

ENDS_SESSION: dict[int, str] = {
    R.CLIENT_INITIATED: "the user left",
    R.PARTICIPANT_REMOVED: "removed from the room",
    R.DUPLICATE_IDENTITY: "the same identity joined from another device",
    R.ROOM_DELETED: "the room was deleted",
    R.ROOM_CLOSED: "the room was closed",
    # SIP calls: the callee is not there to reconnect to.
    R.USER_UNAVAILABLE: "the callee did not answer",
    R.USER_REJECTED: "the callee rejected the call",
    R.SIP_TRUNK_FAILURE: "the SIP trunk failed",
}


def reason_name(value: int | None) -> str:
    """A DisconnectReason by name ("UNKNOWN_REASON" when LiveKit did not say)."""
    if value is None:
        return "UNKNOWN_REASON"
    try:
        return R.Name(value)
    except ValueError:
        return f"DisconnectReason({value})"


def ends_session(value: int | None) -> bool:
    """True when the participant is meant to be gone: end the session, do not reconnect."""
    return value is not None and value in ENDS_SESSION


def describe(value: int | None) -> str:
    """The reason's name, and what it means when it ends the session."""
    name = reason_name(value)
    meaning = ENDS_SESSION.get(value) if value is not None else None
    return f"{name}: {meaning}" if meaning else name
