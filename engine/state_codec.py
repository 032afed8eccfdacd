"""The stored form of a customer's state: compact JSON, deflated with a fixed dictionary.

A state is written once per batch that touches the customer and kept for as long as the
customer exists, so its size is the engine's Redis footprint. The document is JSON with
enrollments as positional rows and visit times as differences, deflated (raw, level 1)
with a preset dictionary of the field names and common values, which is what makes a
state of one or two kilobytes compress well on its own.

Format byte 0x02 marks this form; a value that starts with "{" is the plain JSON form of
earlier releases and is still read, so kept state upgrades as customers are written.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

COMPACT = 0x02
"""Leading byte of the deflated form."""
_WBITS = -15  # raw deflate: no header or checksum (Redis keeps the value intact)

_VOCABULARY = (
    # frozen with format 0x02: changing a word makes stored states unreadable
    "journey version seq entered_at holdout step arrived_at due_at ended_at end_reason "
    "goal_deadline goal_reached vouchers segment offer_id issued_at expires_at redeemed_at "
    "completed exit:came_back exit:visited exit:unsubscribed version_missing step_limit "
    "name email phone telegram_chat_id birthday timezone language consents first_visit_at "
    "first_visit_amount last_visit_at visit_count recent_visits recent_amounts total_spend "
    "last_visit_amount last_venue_id last_party_size last_channel last_items last_rating "
    "last_rating_at rating_count rating_sum item_counts category_counts daypart_counts "
    "weekday_counts points points_earned points_spent tags distinct_items points_expired "
    "vouchers_redeemed messages_opened messages_clicked unsubscribed last_booking_at "
    "Europe/Berlin Europe/Paris Europe/London Europe/Amsterdam Europe/Madrid Europe/Rome "
    "breakfast lunch afternoon dinner late monday tuesday wednesday thursday friday "
    "saturday sunday dine-in takeaway delivery email sms whatsapp telegram push webhook "
    "new regular loyal sleeping occasional review_request birthday impressed_newcomer "
    "lost_regular at_risk_winback favourite_dish off_peak_nudge vip_invitation "
    "first_visit_anniversary ~points_expiry example.com example.org example.net"
)
ZDICT = b"".join(b'"' + word.encode() + b'":' for word in _VOCABULARY.split()) + (
    b'{"p":{"e":{"v":{"a":{"r":["s":[,null,false,true,0,1,"}]')


def pack(document: dict[str, Any]) -> bytes:
    """The stored bytes of a state document."""
    deflater = zlib.compressobj(1, zlib.DEFLATED, _WBITS, 8, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    return bytes((COMPACT,)) + deflater.compress(orjson.dumps(document)) + deflater.flush()


def unpack(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The state document and whether it is in the compact layout (False: plain JSON
    of earlier releases, with enrollments as objects and absolute visit times)."""
    if raw[:1] == b"{":
        return orjson.loads(raw), False
    if raw[0] != COMPACT:
        raise ValueError(f"unknown state format byte 0x{raw[0]:02x}")
    inflater = zlib.decompressobj(_WBITS, ZDICT)
    return orjson.loads(inflater.decompress(raw[1:]) + inflater.flush()), True


def differences(values: list[int]) -> list[int]:
    """Each value minus the one before (the first as it is)."""
    return [b - a for a, b in zip([0, *values], values, strict=False)]


def running_sums(steps: list[int]) -> list[int]:
    """The inverse of `differences`."""
    total, out = 0, []
    for step in steps:
        total += step
        out.append(total)
    return out
