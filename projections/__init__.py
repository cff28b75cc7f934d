"""Materialised views of the session streams (UI state, attempt counts, history, stats).

The views are fed in one pass: one reader of the log decodes each event once and hands
batches to every view; a view computes its rows from the event and its own row (kept in
memory between batches, read back in one query when missing), never by re-reading the
session. A batch changes every view's rows and moves every view's tracking position in one
transaction (eventsourcing's TrackingRecorder), so every event is applied exactly once,
across crashes and restarts. Writes are batched: executemany on SQLite; COPY (and, for
upserts, COPY into a temporary table and one INSERT ... SELECT ... ON CONFLICT) on PostgreSQL.

Alembic owns every table here, the views' and their tracking tables (`<view>_tracking`):
`clara-es db upgrade` or `alembic upgrade head`. eventsourcing creates only its own
event and snapshot tables.

- `runner.ViewRunner` keeps a group of views (all four by default; one view when given one):
  catch up in batches, then follow live (PostgreSQL: eventsourcing's LISTEN/NOTIFY
  subscription; SQLite: polling the notification log). Each view keeps its own position, so
  one view can be rebuilt while the others stay.
- `supervisor.Supervisor` runs the group's runner, restarts it when it stopped, and nudges
  it when it fell behind without moving (a missed NOTIFY).
- `catch_up.catch_up` / `catch_up.rebuild`: one-shot work for commands and tests.
- `sql`: the write side, SQLAlchemy Core statements compiled once per dialect and run
  inside the tracking recorder's transaction; `queries`: the read side, also Core.
"""
