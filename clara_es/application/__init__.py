"""The service layer: commands and queries over the session streams."""

from clara_es.application.history import HistoryEntry, session_history
from clara_es.application.sessions import InvalidCommand, VoiceSessions

__all__ = ["HistoryEntry", "InvalidCommand", "VoiceSessions", "session_history"]
