"""Move one session between stores as JSON lines, so an incident can be replayed on a laptop.

    line 1       header: format, format version, session id, application, count, export time
    lines 2..n+1 one stored event each: version, topic, state (the stored JSON), hash
    last line    footer: count and the last hash

Each line's hash is sha256(previous hash + the line without its hash), starting from the
header's: a truncated, reordered or edited file breaks the chain at the first bad line. The
chain catches damage and hand edits, not a forger who recomputes it (it has no secret).
An import checks the whole file first and then inserts every event in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import resolve_topic

from clara_es import __version__
from clara_es.application import VoiceSessions
from clara_es.domain import DomainError, SessionNotFound
from clara_es.domain.events import SessionEvent

FORMAT = "clara-es/session-export"
FORMAT_VERSION = 1


class ImportRefused(DomainError):
    """The file is not an intact export; nothing was imported."""


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _chain(previous: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((previous + _canonical(body)).encode()).hexdigest()


def _line(body: dict[str, Any], previous: str) -> tuple[str, str]:
    digest = _chain(previous, body)
    return _canonical({**body, "hash": digest}), digest


def export_lines(app: VoiceSessions, session_id: UUID, now: datetime) -> Iterator[str]:
    """The session's stream as JSON lines (without newlines)."""
    stored = app.stored_events(session_id)
    if not stored:
        raise SessionNotFound(f"no session {session_id}")
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "session_id": str(session_id),
        "application": app.name, "events": len(stored), "exported_at": now.isoformat(),
        "exported_by": f"clara-es {__version__}",
    }
    line, digest = _line(header, "")
    yield line
    for event in stored:
        body = {
            "version": event.originator_version, "topic": event.topic,
            "state": json.loads(event.state),
        }
        line, digest = _line(body, digest)
        yield line
    line, _ = _line({"end": True, "events": len(stored)}, digest)
    yield line


@dataclass(frozen=True)
class Imported:
    session_id: UUID
    source_session_id: UUID
    events: int


@dataclass(frozen=True)
class Export:
    """A checked export file: its header and one body per stored event."""

    header: dict[str, Any]
    bodies: list[dict[str, Any]]


def _text(raw_lines: Iterable[str | bytes]) -> Iterator[str]:
    for number, raw in enumerate(raw_lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ImportRefused(f"line {number}: not UTF-8 text") from None
        yield raw.rstrip("\r\n")


def read_export(raw_lines: Iterable[str | bytes]) -> Export:
    """Check a whole file (text lines, or bytes read as UTF-8), or refuse it with the first
    bad line's number and the reason."""
    lines = [line for line in _text(raw_lines) if line]
    if not lines:
        raise ImportRefused("line 1: the file is empty")
    digest = ""
    bodies: list[dict[str, Any]] = []
    header: dict[str, Any] = {}
    ended = False
    for number, text in enumerate(lines, start=1):
        if ended:
            raise ImportRefused(f"line {number}: text after the end of the export")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportRefused(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "hash" not in record:
            raise ImportRefused(f"line {number}: not a clara-es export line (no hash)")
        given = record.pop("hash")
        if number == 1:
            if record.get("format") != FORMAT:
                raise ImportRefused(f"line 1: not a clara-es session export ({FORMAT!r} expected)")
            if record.get("format_version") != FORMAT_VERSION:
                raise ImportRefused(
                    f"line 1: export format version {record.get('format_version')!r} "
                    f"is not {FORMAT_VERSION}"
                )
            try:
                UUID(str(record.get("session_id")))
            except ValueError:
                raise ImportRefused("line 1: the header names no valid session id") from None
            header = record
        digest = _chain(digest, record)
        if given != digest:
            raise ImportRefused(f"line {number}: hash mismatch: the line was edited or reordered")
        if number == 1:
            continue
        if record.get("end") is True:
            ended = True
            if record.get("events") != len(bodies) or header.get("events") != len(bodies):
                raise ImportRefused(f"line {number}: the export says {header.get('events')} "
                                    f"events, the file has {len(bodies)}")
            continue
        version = record.get("version")
        if type(version) is not int or version != len(bodies) + 1:
            raise ImportRefused(
                f"line {number}: version {version!r}, expected {len(bodies) + 1}"
            )
        _check_topic(number, record.get("topic"))
        if not isinstance(record.get("state"), dict):
            raise ImportRefused(f"line {number}: the event's state is not a JSON object")
        bodies.append(record)
    if not ended:
        raise ImportRefused(f"line {len(lines)}: the file ends before the export's last line "
                            "(truncated)")
    return Export(header=header, bodies=bodies)


def _check_topic(number: int, topic: Any) -> None:
    try:
        cls = resolve_topic(str(topic))
    except Exception:
        raise ImportRefused(f"line {number}: unknown event type {topic!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, SessionEvent)):
        raise ImportRefused(f"line {number}: {topic!r} is not a voice session event")


def _check_applies(app: VoiceSessions, stored: list[StoredEvent]) -> None:
    """Every event must read back and apply in order, as it will when the session is used."""
    session: Any = None
    for number, event in enumerate(stored, start=2):
        try:
            session = app.mapper.to_domain_event(event).mutate(session)
        except Exception as exc:
            raise ImportRefused(
                f"line {number}: the event does not apply to the session ({exc})"
            ) from None


def import_export(app: VoiceSessions, export: Export, new_id: bool = False) -> Imported:
    """Load a checked export into the application's store, all of it or nothing."""
    source = UUID(export.header["session_id"])
    target = uuid.uuid4() if new_id else source
    stored = [
        StoredEvent(
            originator_id=target, originator_version=body["version"], topic=body["topic"],
            state=json.dumps(body["state"], separators=(",", ":")).encode(),
        )
        for body in export.bodies
    ]
    _check_applies(app, stored)
    try:
        app.insert_stored(stored)
    except IntegrityError:
        raise ImportRefused(
            f"session {target} already exists in this store (use --new-id to import a copy)"
        ) from None
    return Imported(session_id=target, source_session_id=source, events=len(stored))
