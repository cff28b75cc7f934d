"""Replay and race debugging: time travel through a session, find its races, move it between
stores, re-run it against today's code, and hunt races in a seeded simulation."""
