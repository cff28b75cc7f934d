"""The agent's side: one room's events become commands on one session.

Was ClaraVoiceAgent.setupReconnectionMonitoring(sessionId, participant). The monitor listens
to a `livekit.rtc.Room` for the session's participant:

- `connection_quality_changed`: every change is recorded at once (repeats record nothing).
  Whether a poor (or lost) spell lasted long enough to become QualityPoor (and restart the
  audio pipeline) is the process manager's durable timer (CLARA_ES_POOR_WINDOW_S), the same
  for quality reported here or over HTTP.
- `participant_disconnected` / `participant_connected`: the user left (an outage, or the end
  of the session if the user left on purpose) or is back.
- the agent's own `reconnecting` / `reconnected` / `disconnected`: recorded as the agent's
  connection. When the server forces the agent to reconnect fully, the SDK (livekit-ffi's
  `handle_restarting`) first drops every remote participant, with no disconnect reason and
  while the room still says connected, and only then reports `connection_state_changed`
  (reconnecting) and `reconnecting`. So a departure without a reason is held for `settle`
  (1 s): if the agent's reconnect follows, it is recorded as the agent's outage (SignalIgnored),
  otherwise as the user's, that much later. A departure with a reason is recorded at once:
  the user's outage, or the end of the session (leave_reasons.py). (A user who really leaves
  while the agent reconnects is not seen by the agent; LiveKit's participant_left webhook
  records it, see webhooks.py.)

Commands run synchronously inside the room's event callbacks: each one is a short append,
and the stream then holds the events in the order the room reported them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from livekit import rtc

from clara_es.adapters.livekit import sdk
from clara_es.adapters.livekit.clock import AsyncClock
from clara_es.adapters.livekit.leave_reasons import LeaveReason, leave_reason
from clara_es.application import VoiceSessions
from clara_es.domain import DomainError, UIState
from clara_es.domain.commands import (
    ChangeAgentConnection,
    ChangeQuality,
    Command,
    ReportParticipantJoined,
    ReportParticipantLeft,
)
from clara_es.domain.session import AgentConnection

log = logging.getLogger(__name__)

DEFAULT_SETTLE = timedelta(seconds=1)


class CommandSink(Protocol):
    """Where the monitor's commands go: the application, or an agent's link to the service
    (which may answer None: the command is on its way)."""

    def handle(self, command: Command, session_id: UUID) -> UIState | None: ...


class AgentMonitor:
    def __init__(
        self,
        app: VoiceSessions | CommandSink,
        session_id: UUID,
        clock: AsyncClock,
        *,
        settle: timedelta = DEFAULT_SETTLE,
        on_change: Callable[[UIState], None] | None = None,
        participant: str | None = None,
    ) -> None:
        if settle < timedelta(0):
            raise ValueError("the settle time cannot be negative")
        self.app = app
        self.session_id = session_id
        if participant is None:
            assert isinstance(app, VoiceSessions), "a participant identity is needed"
            participant = app.session(session_id).participant
        self.participant = participant
        self.clock = clock
        self.settle = settle
        self.on_change = on_change
        self.room: rtc.Room | None = None
        self._agent_connection = AgentConnection.CONNECTED
        self._held_leave: LeaveReason | None = None
        self._held_timer: asyncio.Task[None] | None = None
        self._handlers: dict[str, Callable[..., None]] = {
            "connection_quality_changed": self._on_quality,
            "participant_connected": self._on_participant_connected,
            "participant_disconnected": self._on_participant_disconnected,
            "connection_state_changed": self._on_connection_state,
            "reconnecting": self._on_reconnecting,
            "reconnected": self._on_reconnected,
            "disconnected": self._on_disconnected,
        }

    def attach(self, room: rtc.Room) -> None:
        if self.room is not None:
            raise RuntimeError("this monitor is already attached to a room; detach it first")
        self.room = room
        for name, handler in self._handlers.items():
            room.on(name, handler)  # type: ignore[arg-type]

    def detach(self) -> None:
        """Remove every listener; a held departure is dropped (the agent is going away, it can
        no longer tell whose outage it was)."""
        self._drop_held_leave()
        if self.room is None:
            return
        for name, handler in self._handlers.items():
            self.room.off(name, handler)  # type: ignore[arg-type]
        self.room = None

    # ---- the room's events -------------------------------------------------------------------

    def _on_quality(self, participant: rtc.Participant | None, quality: int) -> None:
        if not self._is_ours(participant):
            return
        self._release_held_leave()
        q = sdk.quality(quality)
        self._run(lambda: self.app.handle(
            ChangeQuality(participant=self.participant, quality=q), self.session_id
        ))

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if self._is_ours(participant):
            self._release_held_leave()
            self._run(lambda: self.app.handle(ReportParticipantJoined(), self.session_id))

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if not self._is_ours(participant):
            return
        self._release_held_leave()
        left = leave_reason(participant.disconnect_reason)
        if self._agent_connection == AgentConnection.CONNECTED and not left.known:
            self._hold_leave(left)
        else:
            self._record_leave(left)

    def _on_connection_state(self, state: int) -> None:
        if state == rtc.ConnectionState.CONN_RECONNECTING:
            self._on_reconnecting()

    def _on_reconnecting(self) -> None:
        self._agent(AgentConnection.RECONNECTING, "room reconnecting")
        self._release_held_leave()  # the agent's full reconnect dropped the participant

    def _on_reconnected(self) -> None:
        self._release_held_leave()
        self._agent(AgentConnection.CONNECTED, "room reconnected")

    def _on_disconnected(self, reason: int | None = None) -> None:
        self._agent(AgentConnection.DISCONNECTED, sdk.disconnect_reason(reason))
        self._release_held_leave()

    # ---- departures -----------------------------------------------------------------------------

    def _record_leave(self, left: LeaveReason) -> None:
        self._run(lambda: self.app.handle(
            ReportParticipantLeft(
                reason=left.text, user_initiated=left.user_left, ends_session=left.ends_session
            ),
            self.session_id,
        ))

    def _hold_leave(self, left: LeaveReason) -> None:
        self._held_leave = left
        due = self.clock.now() + self.settle
        self._held_timer = asyncio.get_running_loop().create_task(self._settle(due))

    async def _settle(self, due: datetime) -> None:
        await self.clock.sleep_until(due)
        self._held_timer = None
        self._release_held_leave()

    def _release_held_leave(self) -> None:
        """Record the held departure now: whose outage it was follows from the agent's
        connection as recorded by then."""
        left = self._held_leave
        self._drop_held_leave()
        if left is not None:
            self._record_leave(left)

    def _drop_held_leave(self) -> None:
        self._held_leave = None
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None

    # ---- helpers -------------------------------------------------------------------------------

    def _agent(self, connection: AgentConnection, reason: str) -> None:
        self._agent_connection = connection
        self._run(lambda: self.app.handle(
            ChangeAgentConnection(connection=connection, reason=reason), self.session_id
        ))

    def _is_ours(self, participant: Any) -> bool:
        return getattr(participant, "identity", None) == self.participant

    def _run(self, command: Callable[[], UIState | None]) -> None:
        try:
            state = command()
        except DomainError as exc:
            log.warning("session %s refused a room event: %s", self.session_id, exc)
            return
        if self.on_change is not None and state is not None:
            self.on_change(state)
