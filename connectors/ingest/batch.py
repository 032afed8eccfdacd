"""A request body read into events, each checked with the engine's own decoder.

A body is one JSON event, a JSON array of events, or NDJSON (one event per line; chosen by
a `Content-Type` holding `ndjson` or `jsonl`; blank lines are skipped). Each event gets the
field `ingest_source` set to the source that posted it (any value the sender gave is
replaced), and the exact line that will be stored is then decoded by
`engine.core.decoding.decode_line`. So the engine reads the stored line exactly as it was
checked here: an event it would dead-letter is refused at the door, with the reason the
dead letter would carry, and an event accepted here is never dead-lettered for its content.

`index` is the event's 0-based position among the request's events (array elements, or
non-blank NDJSON lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from engine.core.decoding import decode_line
from engine.core.events import EventError
from engine.errors import JourneysError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EVENTS",
    "SOURCE_FIELD",
    "Accepted",
    "BodyError",
    "CheckedBatch",
    "Refused",
    "check_events",
    "read_body",
]

SOURCE_FIELD = "ingest_source"
"""The field naming the source of an ingested event; the engine's decoder ignores it."""
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 10_000


class BodyError(JourneysError, ValueError):
    """A body that holds no events to check (answered 400)."""

    code = "ingest_body"


@dataclass(frozen=True)
class Accepted:
    """An event that passed: the line to store (no newline), its id and its customer."""

    index: int
    event_id: str
    customer_id: str
    line: bytes


@dataclass(frozen=True)
class Refused:
    """An event the engine would dead-letter, and the reason it would give."""

    index: int
    reason: str


@dataclass(frozen=True)
class CheckedBatch:
    """A request's events, split into those to store and those refused, in order."""

    accepted: tuple[Accepted, ...]
    refused: tuple[Refused, ...]


@dataclass(frozen=True)
class _Unreadable:
    """An NDJSON line orjson cannot read, with orjson's reason."""

    line: bytes
    reason: str


def read_body(body: bytes, content_type: str) -> list[Any]:
    """The request's events as decoded JSON values; an NDJSON line that is not JSON
    comes back as `_Unreadable`, for `check_events` to refuse with the engine's reason."""
    if not body.strip():
        raise BodyError("the body is empty; send one JSON event, an array or NDJSON lines")
    kind = content_type.split(";", 1)[0].strip().lower()
    if "ndjson" in kind or "jsonl" in kind:
        values = [_line_value(line) for line in body.split(b"\n") if line.strip()]
    else:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"the body is not valid JSON ({exc}); send NDJSON with "
                            "Content-Type: application/x-ndjson") from None
        values = value if isinstance(value, list) else [value]
    if not values:
        raise BodyError("the body holds no events")
    if len(values) > MAX_EVENTS:
        raise BodyError(f"{len(values)} events in one request; send at most {MAX_EVENTS}")
    return values


def _line_value(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return _Unreadable(line, f"not valid JSON: {exc}")


def check_events(values: list[Any], source: str) -> CheckedBatch:
    """Tag each event with `source` and decode its stored line as the engine will."""
    accepted: list[Accepted] = []
    refused: list[Refused] = []
    for index, value in enumerate(values):
        if isinstance(value, _Unreadable):
            refused.append(Refused(index, _reason_for(value)))
            continue
        if isinstance(value, dict):
            line = orjson.dumps({**value, SOURCE_FIELD: source})
        else:
            line = orjson.dumps(value)
        try:
            event = decode_line(line, index)
        except EventError as exc:
            refused.append(Refused(index, exc.reason))
            continue
        accepted.append(Accepted(index, event.event_id, event.customer_id, line))
    return CheckedBatch(tuple(accepted), tuple(refused))


def _reason_for(unreadable: _Unreadable) -> str:
    """The engine's reason for a line orjson cannot read; orjson's, where the engine's
    decoder would take it (a number beyond 64 bits in a field it ignores), as the stored
    line must carry the source tag."""
    try:
        decode_line(unreadable.line)
    except EventError as exc:
        return exc.reason
    return unreadable.reason
