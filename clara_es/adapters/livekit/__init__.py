"""Where clara-es meets LiveKit: the agent's room monitor, the reconnecting client, webhooks."""

from clara_es.adapters.livekit.agent_monitor import AgentMonitor
from clara_es.adapters.livekit.client import ReconnectingClient
from clara_es.adapters.livekit.clock import AsyncClock, AsyncSystemClock, AsyncVirtualClock
from clara_es.adapters.livekit.webhooks import (
    LiveKitWebhooks,
    RoomIndex,
    UnknownRoom,
    WebhookRejected,
    WebhookResult,
)

__all__ = [
    "AgentMonitor",
    "AsyncClock",
    "AsyncSystemClock",
    "AsyncVirtualClock",
    "LiveKitWebhooks",
    "ReconnectingClient",
    "RoomIndex",
    "UnknownRoom",
    "WebhookRejected",
    "WebhookResult",
]
