"""LiveKit's enums as clara-es records them."""

from __future__ import annotations

from livekit import rtc

from clara_es.adapters.livekit import leave
from clara_es.domain import Quality

QUALITY = {
    rtc.ConnectionQuality.QUALITY_EXCELLENT: Quality.EXCELLENT,
    rtc.ConnectionQuality.QUALITY_GOOD: Quality.GOOD,
    rtc.ConnectionQuality.QUALITY_POOR: Quality.POOR,
    rtc.ConnectionQuality.QUALITY_LOST: Quality.LOST,
    rtc.ConnectionQuality.QUALITY_UNKNOWN: Quality.UNKNOWN,
}

USER_LEFT = rtc.DisconnectReason.CLIENT_INITIATED


def quality(value: int) -> Quality:
    """rtc.ConnectionQuality (or its proto number) as a Quality; anything else is unknown."""
    try:
        return QUALITY[rtc.ConnectionQuality(value)]
    except ValueError:
        return Quality.UNKNOWN


def disconnect_reason(value: int | None) -> str:
    """A DisconnectReason by name ("UNKNOWN_REASON" when LiveKit did not say); leave.py says
    which reasons end a session."""
    return leave.reason_name(value)
