"""The service layer: commands and queries over the session streams."""

from clara_es.application.history import session_history
from clara_es.application.records import EventRecord, HistoryEntry
from clara_es.application.sessions import InvalidCommand, VoiceSessions

__all__ = ["EventRecord", "HistoryEntry", "InvalidCommand", "VoiceSessions", "session_history"]
