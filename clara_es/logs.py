"""Log lines for the long-running commands: structlog renders every record, the stdlib's
(the process manager's `event=...` lines, uvicorn's, the LiveKit SDK's) and its own, as
key=value lines (the default) or as JSON lines.

A stdlib message that is already `event=name key=value ...` is written as it is in key=value
lines, so the lines people and tests grep for do not change, and is split into fields in JSON.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["kv", "json"]

_KEY_VALUES = re.compile(r"event=\S")
_HEAD = ("timestamp", "level", "logger")
# uvicorn's general logger is called "uvicorn.error" even for its info lines.
_LOGGER_NAMES = {"uvicorn.error": "uvicorn"}
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes, like logging's last resort."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _rename_logger(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    name = event_dict.get("logger")
    event_dict["logger"] = _LOGGER_NAMES.get(name, name)
    return event_dict


def _fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Split a stdlib message of key=value pairs (or a uvicorn access line) into fields."""
    record = event_dict.get("_record")
    args = event_dict.pop("positional_args", ())
    if record is not None and record.name == "uvicorn.access" and len(args) == 5:
        event_dict["_fields"] = {"event": "http_request", **dict(zip(_ACCESS_FIELDS, args,
                                                                      strict=True))}
        return event_dict
    message = event_dict.get("event")
    if not isinstance(message, str) or not _KEY_VALUES.match(message):
        return event_dict
    try:
        pairs = [token.split("=", 1) for token in shlex.split(message)]
    except ValueError:  # an unbalanced quote in a value: keep the message whole
        return event_dict
    if all(len(pair) == 2 and pair[0].isidentifier() for pair in pairs):
        event_dict["_line"] = message
        event_dict["_fields"] = dict(pairs)
    return event_dict


def _render_kv(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    exception = event_dict.pop("exception", None)
    line = event_dict.pop("_line", None)
    fields = event_dict.pop("_fields", None)
    head = {key: event_dict.pop(key) for key in (*_HEAD, "event") if key in event_dict}
    logfmt = structlog.processors.LogfmtRenderer(bool_as_flag=False)
    if line is not None:
        head.pop("event", None)
        parts = [logfmt(_, __, head), line]
    else:
        parts = [logfmt(_, __, {**head, **(fields or {})})]
    if event_dict:
        parts.append(logfmt(_, __, event_dict))
    text = " ".join(parts)
    return f"{text}\n{exception}" if exception else text


def _render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    event_dict.pop("_line", None)
    fields = event_dict.pop("_fields", {})
    ordered = {key: event_dict.pop(key) for key in (*_HEAD, "event") if key in event_dict}
    ordered.update(event_dict)
    for key, value in fields.items():
        if key == "event" or key not in ordered:
            ordered[key] = value
    return structlog.processors.JSONRenderer()(_, __, ordered)  # type: ignore[return-value]


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _rename_logger,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(log_format: LogFormat = "kv", level: str | int = "INFO") -> logging.Handler:
    """Route every log record of the process through structlog to stderr, in one format.

    Calling it again replaces what it set up before (and nothing else on the root logger).
    """
    renderer = _render_json if log_format == "json" else _render_kv
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), _fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
        pass_foreign_args=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    handler.set_name("clara_es")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "clara_es"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return handler


def get_logger(name: str) -> Any:
    """A structlog logger whose lines go where `configure_logging` sends the stdlib's."""
    return structlog.stdlib.get_logger(name)
