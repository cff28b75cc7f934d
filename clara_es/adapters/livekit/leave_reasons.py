"""Why a participant left a LiveKit room, and whether that ends the voice session.

One table for every place that sees a departure: the agent's room (`participant_disconnected`),
the client's room (`disconnected`) and LiveKit's webhooks (`participant_left`). The numbers are
LiveKit's DisconnectReason (livekit.protocol.models and livekit.rtc number them alike).

A departure ends the session when nobody should try to bring the participant back: the user
left, the participant was removed (RoomService.RemoveParticipant) or replaced by a newer
connection with the same identity, the room was deleted or closed, or a SIP call was refused
or broke. Every other reason is an outage: the network or a server went away and the reconnect
schedule runs. A number this SDK does not know (a newer server) is recorded as unknown, an
outage, and never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from livekit.protocol.models import DisconnectReason

UNKNOWN = "UNKNOWN_REASON"

# The reasons that end the session, and what each means to the person reading the history.
ENDS_SESSION: dict[int, str] = {
    DisconnectReason.CLIENT_INITIATED: "the user left",
    DisconnectReason.DUPLICATE_IDENTITY: "the same identity joined from another device",
    DisconnectReason.PARTICIPANT_REMOVED: "removed from the room",
    DisconnectReason.ROOM_DELETED: "the room was deleted",
    DisconnectReason.ROOM_CLOSED: "the room was closed",
    DisconnectReason.USER_UNAVAILABLE: "the callee did not answer",
    DisconnectReason.USER_REJECTED: "the callee rejected the call",
    DisconnectReason.SIP_TRUNK_FAILURE: "the SIP trunk failed",
}


@dataclass(frozen=True)
class LeaveReason:
    code: int
    name: str  # LiveKit's name; UNKNOWN_REASON for a number this SDK does not know
    ends_session: bool

    @property
    def user_left(self) -> bool:
        return self.code == DisconnectReason.CLIENT_INITIATED

    @property
    def known(self) -> bool:
        return self.code != DisconnectReason.UNKNOWN_REASON and self.name != UNKNOWN

    @property
    def text(self) -> str:
        """What the stream records: the name, and the number when the name is not LiveKit's."""
        if self.name == UNKNOWN and self.code != DisconnectReason.UNKNOWN_REASON:
            return f"{UNKNOWN} ({self.code})"
        return self.name

    @property
    def description(self) -> str:
        """The name, and what it means where it ends the session."""
        meaning = ENDS_SESSION.get(self.code)
        return f"{self.text}: {meaning}" if meaning else self.text


def leave_reason(code: int | None) -> LeaveReason:
    """The departure LiveKit reported with `code` (None: LiveKit did not say)."""
    if code is None:
        return LeaveReason(DisconnectReason.UNKNOWN_REASON, UNKNOWN, ends_session=False)
    try:
        name = DisconnectReason.Name(code)
    except ValueError:
        name = UNKNOWN
    return LeaveReason(int(code), name, ends_session=code in ENDS_SESSION)
