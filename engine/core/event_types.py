"""The event types as msgspec Structs: one union tagged by `type`, decoded straight into
typed fields with their bounds checked by the decoder (see `engine.core.decoding`).

Kept apart from the decoding functions: msgspec reads these classes' annotations, so the
module stays plain Python while the functions are compiled with the core.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args, get_type_hints

import msgspec

from engine.core.events import MAX_ID_LENGTH, MESSAGE_STATUSES, POINTS_KINDS
from journeys_dsl.fields import EVENT_FIELDS, PRESENCE_SOURCES, PRESENCE_ZONES

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


ZoneName = Literal["entrance", "shop_entrance", "toilets", "event_space", "food_court",
                   "parking", "cinema", "play_area", "lounge", "info_desk", "terrace", "other"]
SourceName = Literal["wallet_pass", "wifi", "beacon", "sensor", "app", "qr"]


class Presence(_Common, tag="presence", frozen=True):
    """Seen at a venue or one of its zones, with no purchase. A zone added by an event
    types file is refused here and accepted by `validate_event`."""

    venue_id: Id
    zone: ZoneName | None = None
    source: SourceName | None = None


assert get_args(get_type_hints(Message)["status"]) == MESSAGE_STATUSES
assert get_args(get_type_hints(Points)["kind"]) == POINTS_KINDS
assert get_args(ZoneName) == PRESENCE_ZONES
assert get_args(SourceName) == PRESENCE_SOURCES

IdentifierKind = Literal["customer", "card", "phone", "email", "booking"]


class Identifier(msgspec.Struct, frozen=True):
    """One identifier an alias event links to its customer (see engine.core.identity)."""

    kind: IdentifierKind
    value: Id


class Alias(_Common, tag="alias", frozen=True):
    """Links identifiers (a loyalty card, a phone number, another customer id) to the
    customer: not an event journeys react to (see docs/identity.md)."""

    identifiers: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=16)]


TypedEvent = (Visit | Rating | VoucherRedeemed | Booking | ProfileChange | Message | Points
              | Presence | Alias)
DECODER = msgspec.json.Decoder(TypedEvent)


KINDS: tuple[type[_Common], ...] = (Visit, Rating, VoucherRedeemed, Booking, ProfileChange,
                                    Message, Points, Presence)
assert {k.__struct_config__.tag for k in KINDS} == set(EVENT_FIELDS)


def data_fields(kind: type[_Common]) -> tuple[str, ...]:
    """The type's own fields in the order `validate_event` puts them in `Event.data`."""
    tag = kind.__struct_config__.tag
    assert isinstance(tag, str)
    declared = set(kind.__struct_fields__)
    return tuple(name for name in EVENT_FIELDS[tag] if name in declared)
