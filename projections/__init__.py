"""Materialised views of the session streams (UI state, attempt counts, history, stats).

Each view (one module each, with its tables) is an eventsourcing TrackingRecorder: a
batch of events changes the view's rows and moves the view's tracking position in one
transaction, so every event is applied exactly once, across crashes and restarts.

Alembic owns every table here, the views' and their tracking tables (`<view>_tracking`):
`clara-es db upgrade` or `alembic upgrade head`. eventsourcing creates only its own
event and snapshot tables.

- `runner.ViewRunner` keeps one view: catch up in batches, then follow live (PostgreSQL:
  eventsourcing's LISTEN/NOTIFY subscription; SQLite: polling the notification log).
- `supervisor.Supervisor` runs all views, restarts a runner that stopped, and nudges a
  view that fell behind without moving (a missed NOTIFY).
- `catch_up.catch_up` / `catch_up.rebuild`: one-shot work for commands and tests.
- `sql`: the write side, SQLAlchemy Core statements compiled once per dialect and run
  inside the tracking recorder's transaction; `queries`: the read side, also Core.
"""
