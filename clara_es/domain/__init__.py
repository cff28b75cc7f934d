"""The pure domain: no storage, HTTP or LiveKit in here.

Its names are imported on first use (PEP 562), so a light module of the domain (the errors,
the clock) comes without the aggregate and eventsourcing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as type checkers see them
    from clara_es.domain.clock import Clock as Clock
    from clara_es.domain.clock import SystemClock as SystemClock
    from clara_es.domain.clock import VirtualClock as VirtualClock
    from clara_es.domain.errors import ConcurrencyConflict as ConcurrencyConflict
    from clara_es.domain.errors import DomainError as DomainError
    from clara_es.domain.errors import InvalidTransition as InvalidTransition
    from clara_es.domain.errors import SessionNotFound as SessionNotFound
    from clara_es.domain.policy import BackoffPolicy as BackoffPolicy
    from clara_es.domain.session import ConnectionState as ConnectionState
    from clara_es.domain.session import Quality as Quality
    from clara_es.domain.session import VoiceSession as VoiceSession
    from clara_es.domain.signal import Actor as Actor
    from clara_es.domain.signal import Signal as Signal
    from clara_es.domain.status import FAILURE_TEXT as FAILURE_TEXT
    from clara_es.domain.status import UIState as UIState
    from clara_es.domain.status import status_text as status_text
    from clara_es.domain.status import ui_state as ui_state

_MODULES = {
    "clock": ("Clock", "SystemClock", "VirtualClock"),
    "errors": ("ConcurrencyConflict", "DomainError", "InvalidTransition", "SessionNotFound"),
    "policy": ("BackoffPolicy",),
    "session": ("ConnectionState", "Quality", "VoiceSession"),
    "signal": ("Actor", "Signal"),
    "status": ("FAILURE_TEXT", "UIState", "status_text", "ui_state"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
