"""The pure domain: no storage, HTTP or LiveKit in here."""

from clara_es.domain.clock import Clock, SystemClock, VirtualClock
from clara_es.domain.errors import (
    ConcurrencyConflict,
    DomainError,
    InvalidTransition,
    SessionNotFound,
)
from clara_es.domain.policy import BackoffPolicy
from clara_es.domain.session import ConnectionState, Quality, VoiceSession
from clara_es.domain.signal import Actor, Signal
from clara_es.domain.status import FAILURE_TEXT, UIState, status_text, ui_state

__all__ = [
    "FAILURE_TEXT",
    "Actor",
    "BackoffPolicy",
    "Clock",
    "ConcurrencyConflict",
    "ConnectionState",
    "DomainError",
    "InvalidTransition",
    "Quality",
    "SessionNotFound",
    "Signal",
    "SystemClock",
    "UIState",
    "VirtualClock",
    "VoiceSession",
    "status_text",
    "ui_state",
]
