"""Materialised views of the session streams (UI state, attempt counts, history, stats)."""
