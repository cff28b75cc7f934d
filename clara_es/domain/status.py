"""What the user sees: the status light's text and the Start Session button, from the state."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from clara_es.domain.session import ConnectionState, VoiceSession

FAILURE_TEXT = "Connection lost. Please check your internet and try starting a new session."

START_ENABLED = frozenset({ConnectionState.IDLE, ConnectionState.FAILED, ConnectionState.ENDED})


def status_text(state: ConnectionState, attempt: int, max_attempts: int) -> str:
    match state:
        case ConnectionState.IDLE:
            return "Not connected"
        case ConnectionState.CONNECTING:
            return "Connecting..."
        case ConnectionState.CONNECTED:
            return "Connected"
        case ConnectionState.RECONNECTING if attempt:
            return f"Reconnecting... (attempt {attempt} of {max_attempts})"
        case ConnectionState.RECONNECTING:
            return "Reconnecting..."
        case ConnectionState.FAILED:
            return FAILURE_TEXT
        case ConnectionState.ENDED:
            return "Session ended"
    raise ValueError(f"unknown connection state {state!r}")


class UIState(BaseModel):
    """The UI-state of one session: what the status light and the button show."""

    session_id: UUID
    room: str
    participant: str
    connection_state: ConnectionState
    status_text: str
    start_enabled: bool
    attempt: int
    max_attempts: int
    next_retry_at: datetime | None
    updated_at: datetime
    version: int


def ui_state(session: VoiceSession) -> UIState:
    return UIState(
        session_id=session.id,
        room=session.room,
        participant=session.participant,
        connection_state=session.state,
        status_text=status_text(session.state, session.attempt, session.max_attempts),
        start_enabled=session.state in START_ENABLED,
        attempt=session.attempt,
        max_attempts=session.max_attempts,
        next_retry_at=session.next_retry_at,
        updated_at=session.modified_on,
        version=session.version,
    )
