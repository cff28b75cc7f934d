"""The process's logging as it was: commands run in process configure it, as a real process
would (structlog, a stderr handler, the level), and a test must not inherit that."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

Snapshot = tuple[list[logging.Handler], int]


def _ours(handler: logging.Handler) -> bool:
    return not type(handler).__module__.startswith("_pytest")  # pytest manages its own


def snapshot() -> Snapshot:
    root = logging.getLogger()
    return [h for h in root.handlers if _ours(h)], root.level


def restore(saved: Snapshot) -> None:
    handlers, level = saved
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _ours(h) and h not in handlers]:
        root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@contextmanager
def kept() -> Iterator[None]:
    saved = snapshot()
    try:
        yield
    finally:
        restore(saved)
