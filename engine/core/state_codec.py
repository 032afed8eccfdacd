"""The stored form of a customer's state: compact JSON, compressed with a fixed dictionary.

A state is written once per batch that touches the customer and kept for as long as the
customer exists, so its size is the engine's Redis footprint. The document is JSON with
enrollments as positional rows and visit times as differences, compressed with Zstandard
(level 1) and a preset dictionary, which is what makes a state of one or two kilobytes
compress well on its own. Zstandard rather than zlib: the same size at about a third of the
time.

Format byte 0x03 marks the form written now: the dictionary is `state_dictionary.zdict`,
trained by zstd on the stored states of a generated chain (`python -m
benchmarks.state_dictionary` made it), so it holds whole runs of field names, values and
time prefixes as they occur, not only the words. On states of other generated chains it
packs a state into 0.57 of the bytes the word list of format 0x02 takes, in about half the
time; on a mall's states, unlike the ones it learned from, into 0.86.

Still read: format 0x02 (the same layout compressed with a dictionary of field names and
common values), and a value that starts with "{", the plain JSON form of earlier releases.
Kept state upgrades as customers are written. A new dictionary needs a new format byte: the
stored states of this one stay readable only with it.
"""

from __future__ import annotations

import itertools
import operator
import threading
from pathlib import Path
from typing import Any

import orjson
import zstandard

COMPACT = 0x02
"""Leading byte of the form compressed with the word list (read, no longer written)."""
TRAINED = 0x03
"""Leading byte of the form compressed with the trained dictionary (written)."""
TRAINED_DICTIONARY_FILE = Path(__file__).with_name("state_dictionary.zdict")
"""Frozen with format 0x03: changing it makes stored states unreadable."""

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


_WORDS = zstandard.ZstdCompressionDict(ZDICT, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_TRAINED = zstandard.ZstdCompressionDict(TRAINED_DICTIONARY_FILE.read_bytes(),
                                         dict_type=zstandard.DICT_TYPE_FULLDICT)
_CODECS = threading.local()
"""Per thread (compressor objects are not safe to share): the compressor of the trained
dictionary and a decompressor for each format byte."""


def _codecs() -> tuple[zstandard.ZstdCompressor, dict[int, zstandard.ZstdDecompressor]]:
    codecs: tuple[zstandard.ZstdCompressor, dict[int, zstandard.ZstdDecompressor]] | None = \
        getattr(_CODECS, "pair", None)
    if codecs is None:
        # no checksum or dictionary id: Redis keeps values intact and the format byte
        # names the dictionary; the content size lets decompression allocate once
        codecs = (zstandard.ZstdCompressor(level=1, dict_data=_TRAINED,
                                           write_checksum=False, write_content_size=True,
                                           write_dict_id=False),
                  {TRAINED: zstandard.ZstdDecompressor(dict_data=_TRAINED),
                   COMPACT: zstandard.ZstdDecompressor(dict_data=_WORDS)})
        _CODECS.pair = codecs
    return codecs


def pack(document: dict[str, Any]) -> bytes:
    """The stored bytes of a state document."""
    return bytes((TRAINED,)) + _codecs()[0].compress(orjson.dumps(document))


def pack_with_words(document: dict[str, Any]) -> bytes:
    """The bytes format 0x02 stored for a state document (kept to test that they are
    read, and to compare sizes)."""
    compressor = zstandard.ZstdCompressor(level=1, dict_data=_WORDS, write_checksum=False,
                                          write_content_size=True, write_dict_id=False)
    return bytes((COMPACT,)) + compressor.compress(orjson.dumps(document))


def unpack(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The state document and whether it is in the compact layout (False: plain JSON
    of earlier releases, with enrollments as objects and absolute visit times)."""
    if raw[:1] == b"{":
        return orjson.loads(raw), False
    decompressor = _codecs()[1].get(raw[0])
    if decompressor is None:
        raise ValueError(f"unknown state format byte 0x{raw[0]:02x}")
    return orjson.loads(decompressor.decompress(raw[1:])), True


def differences(values: list[int]) -> list[int]:
    """Each value minus the one before (the first as it is)."""
    return list(map(operator.sub, values, [0, *values]))


def running_sums(steps: list[int]) -> list[int]:
    """The inverse of `differences`."""
    return list(itertools.accumulate(steps, initial=0))[1:]
