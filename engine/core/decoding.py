"""Decoding event lines: one pass from JSON bytes to a validated `Event`.

Each event type is a msgspec Struct, and the types form a union tagged by `type`, so the
JSON is decoded straight into typed fields with their bounds checked by the decoder. The
types accept a subset of what `engine.core.events.validate_event` accepts and build the very same
`Event`: anything they refuse (a number given for an id, a timestamp in another form, a bad
value) goes to the hand-written validator, which either accepts it or gives the reason a
person reads in the dead letters. So the reasons stay as they were, and the common case
skips the generic checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_type_hints

import msgspec
import orjson

from engine.core.events import (
    MAX_ID_LENGTH,
    MAX_LINE_BYTES,
    MESSAGE_STATUSES,
    POINTS_KINDS,
    Event,
    EventError,
    parse_timestamp,
    validate_event,
    validate_profile_fields,
)
from journeys_dsl.fields import EVENT_FIELDS

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Number = Annotated[float, msgspec.Meta(ge=0)] | Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
"""A number as orjson reads it (a whole number beyond 64 bits would be a float there;
those beyond 63 bits go to the validator)."""
Text = Annotated[str, msgspec.Meta(max_length=2000)]
ShortText = Annotated[str, msgspec.Meta(max_length=50)]
PartySize = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Timestamp = str | int | float


class _Common(msgspec.Struct, tag_field="type", frozen=True):
    event_id: Id
    customer_id: Id
    ts: Timestamp


class Item(msgspec.Struct, frozen=True):
    name: str
    category: str | None = None
    price: Number | None = None
    quantity: Number | None = None


class Visit(_Common, tag="visit", frozen=True):
    amount: Number
    venue_id: Id
    currency: Annotated[str, msgspec.Meta(max_length=8)] | None = None
    items: Annotated[list[Item], msgspec.Meta(max_length=500)] | None = None
    party_size: PartySize | None = None
    channel: ShortText | None = None
    source: ShortText | None = None


class Rating(_Common, tag="rating", frozen=True):
    stars: Annotated[int, msgspec.Meta(ge=1, le=5)]
    text: Text | None = None
    venue_id: Id | None = None


class VoucherRedeemed(_Common, tag="voucher_redeemed", frozen=True):
    voucher_id: Id
    venue_id: Id | None = None


class Booking(_Common, tag="booking", frozen=True):
    venue_id: Id | None = None
    party_size: PartySize | None = None
    booked_for: Annotated[str, msgspec.Meta(max_length=60)] | None = None
    source: ShortText | None = None


Contact = Annotated[str, msgspec.Meta(max_length=320)]


class ProfileChange(_Common, tag="profile", frozen=True):
    name: Contact | None = None
    email: Contact | None = None
    phone: Contact | None = None
    telegram_chat_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    birthday: str | None = None
    timezone: str | None = None
    language: Contact | None = None
    consents: dict[str, bool] | None = None


class Message(_Common, tag="message", frozen=True):
    status: Literal["delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"]
    command_id: Id | None = None
    channel: ShortText | None = None
    journey: Id | None = None


class Points(_Common, tag="points", frozen=True):
    kind: Literal["earned", "spent", "expired"]
    amount: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]


assert get_args(get_type_hints(Message)["status"]) == MESSAGE_STATUSES
assert get_args(get_type_hints(Points)["kind"]) == POINTS_KINDS

TypedEvent = Visit | Rating | VoucherRedeemed | Booking | ProfileChange | Message | Points
_DECODER = msgspec.json.Decoder(TypedEvent)


def _fields_of(kind: type[_Common]) -> tuple[str, ...]:
    """The type's own fields in the order `validate_event` puts them in `Event.data`."""
    tag = kind.__struct_config__.tag
    assert isinstance(tag, str)
    declared = set(kind.__struct_fields__)
    return tuple(name for name in EVENT_FIELDS[tag] if name in declared)


_KINDS = (Visit, Rating, VoucherRedeemed, Booking, ProfileChange, Message, Points)
assert {k.__struct_config__.tag for k in _KINDS} == set(EVENT_FIELDS)
_DATA_FIELDS: dict[type[_Common], tuple[str, tuple[str, ...]]] = {
    kind: (str(kind.__struct_config__.tag), _fields_of(kind)) for kind in _KINDS}
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
        event = validate_event(raw, position)
    event.raw = line
    return event


def decode_typed(line: bytes, position: int) -> Event | None:
    """The line as a validated `Event`, or None where the typed decoder cannot vouch for it
    (then `validate_event` decides, with its reasons)."""
    try:
        typed = _DECODER.decode(line)
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
}
"""What the types leave to code: items cleaned, a profile's dates and zones checked."""
