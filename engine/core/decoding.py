"""Decoding event lines: one pass from JSON bytes to a validated `Event`.

Each event type is a msgspec Struct (`engine.core.event_types`), and the types form a union
tagged by `type`, so the JSON is decoded straight into typed fields with their bounds checked
by the decoder. The types accept a subset of what `engine.core.events.validate_event` accepts
and build the very same `Event`: anything they refuse (a number given for an id, a timestamp
in another form, a bad value) goes to the hand-written validator, which either accepts it or
gives the reason a person reads in the dead letters. So the reasons stay as they were, and
the common case skips the generic checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from engine.core.event_types import DECODER, KINDS, Alias, Item, data_fields
from engine.core.events import (
    MAX_LINE_BYTES,
    Event,
    EventError,
    parse_timestamp,
    validate_event,
    validate_profile_fields,
)
from engine.core.identity import ALIAS, finish_alias, validate_alias

_DATA_FIELDS: dict[type, tuple[str, tuple[str, ...]]] = {
    kind: (str(kind.__struct_config__.tag), data_fields(kind)) for kind in KINDS}
_DATA_FIELDS[Alias] = (ALIAS, ("identifiers",))
"""Each type's name and its fields, in the order `validate_event` puts them in `data`."""


def _items(items: list[Item]) -> list[dict[str, Any]]:
    """Items as `validate_event` keeps them: names and categories cut to 200 characters."""
    clean = []
    for item in items:
        entry: dict[str, Any] = {"name": item.name[:200]}
        if item.category is not None:
            entry["category"] = item.category[:200]
        if item.price is not None:
            entry["price"] = item.price
        if item.quantity is not None:
            entry["quantity"] = item.quantity
        clean.append(entry)
    return clean


def decode_line(line: bytes, position: int = 0) -> Event:
    """Parse one JSONL line into a validated `Event`, or raise `EventError`."""
    if len(line) > MAX_LINE_BYTES:
        raise EventError(f"line of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte limit")
    event = decode_typed(line, position)
    if event is None:
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"not valid JSON: {exc}") from None
        if isinstance(raw, dict) and raw.get("type") == ALIAS:
            event = validate_alias(raw, position)
        else:
            event = validate_event(raw, position)
    event.raw = line
    return event


def decode_typed(line: bytes, position: int) -> Event | None:
    """The line as a validated `Event`, or None where the typed decoder cannot vouch for it
    (then `validate_event` decides, with its reasons)."""
    try:
        typed = DECODER.decode(line)
    except (msgspec.DecodeError, RecursionError):  # ValidationError included; deep nesting
        return None
    event_type, names = _DATA_FIELDS[typed.__class__]
    data: dict[str, Any] = {}
    for name in names:
        value = getattr(typed, name)
        if value is not None:
            data[name] = value
    try:
        finish = _FINISH.get(event_type)
        if finish is not None:
            finish(data)
        ts, offset = parse_timestamp(typed.ts)
    except ValueError:
        return None
    return Event(typed.event_id, typed.customer_id, event_type, ts, data, position, offset)


def _visit(data: dict[str, Any]) -> None:
    items = data.get("items")
    data["items"] = _items(items) if items is not None else []


_FINISH: dict[str, Callable[[dict[str, Any]], None]] = {
    "visit": _visit,
    "profile": validate_profile_fields,  # birthday, time zone and consents as plain checks
    ALIAS: finish_alias,
}
"""What the types leave to code: items cleaned, a profile's dates and zones checked."""
