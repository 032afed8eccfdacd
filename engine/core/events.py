"""Decoding and validating raw events into `Event` objects.

Every problem becomes an `EventError` with a reason a person can act on; the caller sends
the raw line to the dead-letter output with that reason. Nothing here raises anything else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from engine.core.declared_events import DECLARED, EXTRA_ZONES, did_you_mean, validate_declared
from engine.errors import JourneysError
from journeys_dsl.fields import (
    EVENT_FIELDS,
    MESSAGE_STATUSES,
    POINTS_KINDS,
    PRESENCE_SOURCES,
    PRESENCE_ZONES,
)

MAX_ID_LENGTH = 200
MAX_LINE_BYTES = 1_000_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
DERIVED_FIELDS = frozenset({"item_names", "categories", "daypart"})
"""Event fields the engine computes; the same names in the input are ignored."""
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+){0,2}$")
_BIRTHDAY = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")


class EventError(JourneysError, ValueError):
    """An event that cannot be applied, with the reason."""

    code = "event_invalid"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Event:
    """A validated event. `ts` is epoch milliseconds; `data` holds the type's fields only."""

    event_id: str
    customer_id: str
    type: str
    ts: int
    data: dict[str, Any]
    position: int = 0
    utc_offset_s: int | None = None
    raw: bytes | None = None
    """The input line, kept so a dead letter carries it intact."""
    at: int = 0
    """The source's clock when the event arrived behind it (set by the router; 0: not)."""
    line: int | None = None
    """The 1-based line of its input file (set by the router); None for a source without
    lines (a Kafka partition)."""

    @property
    def applied_at(self) -> int:
        """When the engine applies the event (epoch ms): `ts`, or the later clock of a
        source it arrived behind."""
        return max(self.ts, self.at)

    def field(self, name: str) -> Any:
        """A field of the event, common fields included, for expressions."""
        if name == "ts":
            return self.ts
        if name == "event_id":
            return self.event_id
        if name == "customer_id":
            return self.customer_id
        if name == "type":
            return self.type
        return self.data.get(name)


def validate_event(raw: Any, position: int = 0) -> Event:
    """Validate a decoded JSON value as an event."""
    if not isinstance(raw, dict):
        raise EventError(f"an event must be a JSON object, got {type(raw).__name__}")
    event_id = _identifier(raw, "event_id")
    customer_id = _identifier(raw, "customer_id")
    event_type = raw.get("type")
    if not isinstance(event_type, str):
        raise EventError("missing or non-string 'type'")
    fields = EVENT_FIELDS.get(event_type)
    if fields is None:
        declared = DECLARED.get(event_type)
        if declared is None:
            known = sorted([*EVENT_FIELDS, *DECLARED])
            raise EventError(f"unknown event type {event_type!r:.60}"
                             f"{did_you_mean(event_type, known)}; known types: "
                             f"{', '.join(known)}")
        ts, offset = parse_timestamp(raw.get("ts"))
        try:
            data = validate_declared(declared, raw)
        except ValueError as exc:
            raise EventError(str(exc)) from None
        return Event(event_id, customer_id, event_type, ts, data, position, offset)
    ts, offset = parse_timestamp(raw.get("ts"))
    data = {name: raw[name] for name in fields
            if name in raw and raw[name] is not None and name not in DERIVED_FIELDS}
    _VALIDATORS[event_type](data)
    return Event(event_id, customer_id, event_type, ts, data, position, offset)


def parse_timestamp(value: Any) -> tuple[int, int | None]:
    """Epoch ms and the UTC offset in seconds (None for epoch input) of an event's `ts`."""
    if isinstance(value, bool) or value is None:
        raise EventError("missing 'ts' (ISO-8601 with offset, or epoch milliseconds)")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise EventError(f"'ts' is not a finite number: {value!r}")
        ts = int(value)
        offset: int | None = None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise EventError(f"'ts' is not ISO-8601: {value[:60]!r}") from None
        delta = moment.utcoffset()
        if delta is None:
            raise EventError(f"'ts' has no UTC offset: {value[:60]!r} (add Z or +01:00)")
        ts = int(moment.timestamp() * 1000)
        offset = int(delta.total_seconds())
    else:
        raise EventError(f"'ts' must be a string or a number, got {type(value).__name__}")
    if not MIN_TS_MS <= ts < MAX_TS_MS:
        raise EventError(f"'ts' {value!r} is outside 2000-2100 (epoch ms expected for numbers)")
    return ts, offset


def _identifier(raw: dict[str, Any], name: str) -> str:
    """An id as given: a number is refused, or 42 and "42" would be one customer."""
    value = raw.get(name)
    if value is None or value == "":
        raise EventError(f"missing or empty '{name}'")
    if isinstance(value, bool):
        raise EventError(f"'{name}' must be a string, got a boolean")
    if isinstance(value, int | float):
        raise EventError(f"'{name}' must be a string, got a number: quote it")
    if not isinstance(value, str):
        kind = "an array" if isinstance(value, list) else "an object"
        raise EventError(f"'{name}' must be a string, got {kind}")
    if len(value) > MAX_ID_LENGTH:
        raise EventError(f"'{name}' is longer than {MAX_ID_LENGTH} characters")
    return value


def _number(data: dict[str, Any], name: str, *, required: bool, minimum: float = 0.0) -> None:
    value = data.get(name)
    if value is None:
        if required:
            raise EventError(f"missing '{name}'")
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EventError(f"'{name}' must be a number, got {value!r:.60}")
    if value < minimum:
        raise EventError(f"'{name}' must be at least {minimum:g}, got {value}")


def _integer(data: dict[str, Any], name: str, low: int, high: int, *, required: bool) -> None:
    value = data.get(name)
    if value is None:
        if required:
            raise EventError(f"missing '{name}'")
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EventError(f"'{name}' must be a whole number from {low} to {high}, got {value!r:.60}")


def _string(data: dict[str, Any], name: str, *, required: bool, limit: int = 2000) -> None:
    value = data.get(name)
    if value is None:
        if required:
            raise EventError(f"missing '{name}'")
        return
    if isinstance(value, int) and not isinstance(value, bool) and name.endswith("_id"):
        data[name] = str(value)
        return
    if not isinstance(value, str):
        raise EventError(f"'{name}' must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise EventError(f"'{name}' is longer than {limit} characters")


def _one_of(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    value = data.get(name)
    if value not in allowed:
        raise EventError(f"'{name}' must be one of {', '.join(allowed)}, got {value!r:.60}")


def _optional_one_of(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    value = data.get(name)
    if value is not None and value not in allowed:
        hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
        raise EventError(f"'{name}' must be one of {', '.join(allowed)}, got {value!r:.60}"
                         f"{hint}")


def _visit(data: dict[str, Any]) -> None:
    _number(data, "amount", required=True)
    _string(data, "venue_id", required=True, limit=MAX_ID_LENGTH)
    _string(data, "currency", required=False, limit=8)
    _integer(data, "party_size", 1, 1000, required=False)
    _string(data, "channel", required=False, limit=50)
    _string(data, "source", required=False, limit=50)
    items = data.get("items")
    if items is None:
        data["items"] = []
        return
    if not isinstance(items, list) or len(items) > 500:
        raise EventError("'items' must be a list of at most 500 objects")
    clean = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise EventError(f"'items[{index}]' must be an object with a string 'name'")
        entry: dict[str, Any] = {"name": item["name"][:200]}
        category = item.get("category")
        if category is not None:
            if not isinstance(category, str):
                raise EventError(f"'items[{index}].category' must be a string")
            entry["category"] = category[:200]
        for key in ("price", "quantity"):
            value = item.get(key)
            if value is not None:
                _number(item, key, required=False)
                entry[key] = value
        clean.append(entry)
    data["items"] = clean


def _rating(data: dict[str, Any]) -> None:
    _integer(data, "stars", 1, 5, required=True)
    _string(data, "text", required=False)
    _string(data, "venue_id", required=False, limit=MAX_ID_LENGTH)


def _voucher(data: dict[str, Any]) -> None:
    _string(data, "voucher_id", required=True, limit=MAX_ID_LENGTH)
    _string(data, "venue_id", required=False, limit=MAX_ID_LENGTH)


def _booking(data: dict[str, Any]) -> None:
    _string(data, "venue_id", required=False, limit=MAX_ID_LENGTH)
    _integer(data, "party_size", 1, 1000, required=False)
    _string(data, "booked_for", required=False, limit=60)
    _string(data, "source", required=False, limit=50)


def validate_profile_fields(data: dict[str, Any]) -> None:
    """A profile change's fields; normalises `birthday` to MM-DD."""
    for name in ("name", "email", "phone", "language"):
        _string(data, name, required=False, limit=320)
    _string(data, "telegram_chat_id", required=False, limit=64)
    birthday = data.get("birthday")
    if birthday is not None:
        match = _BIRTHDAY.match(birthday) if isinstance(birthday, str) else None
        if match is None or not (1 <= int(match[2]) <= 12 and 1 <= int(match[3]) <= 31):
            raise EventError(f"'birthday' must look like 1990-05-17 or 05-17, got {birthday!r:.40}")
        data["birthday"] = f"{match[2]}-{match[3]}"
    timezone = data.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str) or not _ZONE_NAME.match(timezone):
            raise EventError(f"'timezone' is not a known IANA zone: {timezone!r:.60}")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a zone folder
            raise EventError(f"'timezone' is not a known IANA zone: {timezone!r:.60}") from None
    consents = data.get("consents")
    if consents is not None and (
        not isinstance(consents, dict)
        or not all(isinstance(v, bool) for v in consents.values())
    ):
        raise EventError("'consents' must map channel names to true or false")


def _message(data: dict[str, Any]) -> None:
    _one_of(data, "status", MESSAGE_STATUSES)
    _string(data, "command_id", required=False, limit=MAX_ID_LENGTH)
    _string(data, "channel", required=False, limit=50)
    _string(data, "journey", required=False, limit=MAX_ID_LENGTH)


def _points(data: dict[str, Any]) -> None:
    _one_of(data, "kind", POINTS_KINDS)
    _integer(data, "amount", 0, 10_000_000, required=True)


def _presence(data: dict[str, Any]) -> None:
    _string(data, "venue_id", required=True, limit=MAX_ID_LENGTH)
    _optional_one_of(data, "zone", (*PRESENCE_ZONES, *EXTRA_ZONES))
    _optional_one_of(data, "source", PRESENCE_SOURCES)


_VALIDATORS = {
    "visit": _visit,
    "rating": _rating,
    "voucher_redeemed": _voucher,
    "booking": _booking,
    "profile": validate_profile_fields,
    "message": _message,
    "points": _points,
    "presence": _presence,
}
assert set(_VALIDATORS) == set(EVENT_FIELDS)


def encode_event(event: Event) -> bytes:
    """The event as a JSON line (timestamps as epoch ms), for dead letters and replays."""
    return orjson.dumps({
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "type": event.type,
        "ts": event.ts,
        **event.data,
    })
