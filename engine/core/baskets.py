"""Items bought together: the chain's basket co-occurrence, and what it recommends.

Counting. The items of each visit (its basket) are counted by the shard that applies it
(`Aggregates.record_basket`, compiled with the hot path), one entry per item and period, in
`Aggregates.baskets`:

    co:<period>:<item>   {"<item>": baskets with the item, "<other item>": baskets with both}

A period is 13 weeks of event time (PERIOD_MS, from a Monday); a visit counts in the period
of the time it is applied. The counts are stored in the shard's aggregate hash, in the same
transaction as its state, so a replay never counts a basket twice.

Reading. Conditions read the chain's counts as of the start of the week (Monday 00:00 UTC),
the way they read venue averages as of the start of the day (see engine.core.aggregates and
engine.flow.processor): when a shard passes a week boundary it writes its counts of the
window into its aggregates as one text (`baskets`: JSON, compressed, in base64), which every
day snapshot of that week carries; a reader sums the texts of every shard's snapshot,
decoded only on a day when a condition or a message reads them. The counts are whole
numbers and every shard passes every boundary, so what a condition reads is the same
whatever the batch sizes, shard count or process count. Day snapshots grow by the weekly
text only (about 4 kB per shard for a menu of 30 items).

Window. The counts written at a week boundary cover the period of that boundary and the one
before: the baskets of the last 13 to 26 weeks. Older periods are dropped at the start of a
period.

Bounds. A basket counts the distinct names among its first BASKET_ITEMS_COUNTED items. Per
shard and period, at most ITEMS_KEPT items are counted and each keeps at most PARTNERS_KEPT
partners; a name beyond a bound is not counted by that shard, so made-up names cannot grow
Redis. Within the bounds (any menu of up to PARTNERS_KEPT + 1 items) the counts are exact
and independent of the shard layout. A shard holds at most 2 * ITEMS_KEPT * (PARTNERS_KEPT +
1) live counters (about 52,000, some 1.2 MB of JSON at worst) plus their weekly text; a menu
of 30 items with a dozen partners each takes about 800 counters (15 kB). Nothing is kept per
customer.

Score. For a customer whose favourites (their FAVOURITES_USED most bought items) are
a1..an, bought c1..cn times, an item b the customer has never bought scores

    score(b) = sum over i of  ci / (c1 + ... + cn)  *  P(b | ai),   P(b | a) = n(a, b) / n(a)

where n(a) is the number of baskets with a, and n(a, b) the number with both, counting only
pairs seen in at least MIN_PAIR_BASKETS baskets. The RECOMMENDED_KEPT best items, best first
(ties by name), are `customer.recommended_items`.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from typing import Any

import orjson
import zstandard

from engine.core.aggregates import (
    BASKET_ITEMS_KEPT,
    BASKET_PARTNERS_KEPT,
    BASKET_PERIOD_MS,
    BASKET_PERIOD_START_MS,
    BASKET_PREFIX,
    Aggregates,
)
from engine.core.timeutil import DAY_MS

WEEK_MS = 7 * DAY_MS
WEEK_START_MS = BASKET_PERIOD_START_MS
"""Weeks start on Monday 00:00 UTC (1970-01-05 was a Monday)."""
PERIOD_MS = BASKET_PERIOD_MS
"""13 weeks."""
ITEMS_KEPT = BASKET_ITEMS_KEPT
PARTNERS_KEPT = BASKET_PARTNERS_KEPT
FAVOURITES_USED = 3
MIN_PAIR_BASKETS = 3
RECOMMENDED_KEPT = 5
WEEKLY_KEY = "baskets"
"""The aggregate key of a shard's counts as of the start of the week (JSON, compressed, in
base64)."""


def period_of(at: int) -> int:
    """The counting period of a time (epoch ms)."""
    return (at - WEEK_START_MS) // PERIOD_MS


def basket_key(period: int, item: str) -> str:
    """The key of an item's live counts in one period."""
    return f"{BASKET_PREFIX}{period}:{item}"


# -------------------------------------------------------------------- counting
def record_basket(aggregates: Aggregates, items: list[dict[str, Any]], at: int) -> None:
    """Count the basket of a visit applied at `at` (the distinct names among its first
    BASKET_ITEMS_COUNTED items) in `aggregates` (`Aggregates.record_basket`, compiled with
    the hot path)."""
    aggregates.record_basket(items, at)


def pass_day(aggregates: Aggregates, day: int) -> None:
    """A shard passes the day boundary `day`: at the start of a week, drop the periods no
    longer read and write the live counts (now those of the window) as the shard's weekly
    text, which its day snapshots carry from then on."""
    if (day - WEEK_START_MS) % WEEK_MS:
        return
    live = aggregates.baskets
    if not live and WEEKLY_KEY not in aggregates.own:
        return
    oldest = period_of(day) - 1
    for key in list(live) if period_of(day - WEEK_MS) <= oldest else ():
        period = key[len(BASKET_PREFIX):].partition(":")[0]
        if not period.lstrip("-").isdigit() or int(period) < oldest:
            del live[key]
            aggregates.changed.add(key)
    aggregates.own[WEEKLY_KEY] = encode_counts(live)
    aggregates.changed.add(WEEKLY_KEY)


def encode_counts(live: Mapping[str, dict[str, int]]) -> str:
    """Live counts as the weekly text: JSON, compressed, in base64 (text that JSON holds
    without escapes, so day snapshots carry it at the cost of a copy)."""
    return base64.b64encode(_compressor().compress(orjson.dumps(live))).decode()


def decode_counts(text: Any, now: int) -> dict[str, dict[str, int]]:
    """The counts of a weekly text by item, summed over the window read at `now`; nothing
    if the text is damaged."""
    try:
        live = orjson.loads(zstandard.ZstdDecompressor().decompress(
            base64.b64decode(text, validate=True)))
    except (ValueError, TypeError, zstandard.ZstdError):
        return {}
    return _by_item(live, now) if isinstance(live, dict) else {}


def _by_item(live: Mapping[str, Any], now: int) -> dict[str, dict[str, int]]:
    """Counts keyed by period and item, those of the window read at `now` summed by item."""
    current = period_of(now)
    window = (f"{BASKET_PREFIX}{current - 1}:", f"{BASKET_PREFIX}{current}:")
    out: dict[str, dict[str, int]] = {}
    for key, counts in live.items():
        if not isinstance(counts, dict) or not key.startswith(window):
            continue
        item = key[len(BASKET_PREFIX):].partition(":")[2]
        into = out.get(item)
        if into is None:
            out[item] = dict(counts)
        else:
            for other, count in counts.items():
                into[other] = into.get(other, 0) + count
    return out


def _compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor (one may not be used by two threads at once)."""
    compressor: zstandard.ZstdCompressor | None = getattr(_CODECS, "compressor", None)
    if compressor is None:
        compressor = _CODECS.compressor = zstandard.ZstdCompressor(level=1)
    return compressor


_CODECS = threading.local()


# -------------------------------------------------------------------- reading
def chain_counts(aggregates: Aggregates, now: int) -> dict[str, dict[str, int]]:
    """The basket counts a condition reads at `now`, by item: the weekly texts of every
    shard's snapshot (from `others`, as `aggregates.merge` lists them), or, where one
    Aggregates both counts and is read (no shards, no snapshots), its own live counts of
    the window."""
    merged = aggregates.others
    value = merged.get(WEEKLY_KEY)
    if isinstance(value, list):  # decoded and summed at the first read, and kept so
        summed: dict[str, dict[str, int]] = {}
        for text in value:
            for item, counts in decode_counts(text, now).items():
                into = summed.setdefault(item, {})
                for other, count in counts.items():
                    into[other] = into.get(other, 0) + count
        merged[WEEKLY_KEY] = value = summed
    if isinstance(value, dict):
        return value
    if aggregates.baskets:
        return _by_item(aggregates.baskets, now)
    own = aggregates.own.get(WEEKLY_KEY)
    return decode_counts(own, now) if isinstance(own, str) else {}


def recommended_items(aggregates: Aggregates, item_counts: Mapping[str, int],
                      now: int) -> list[str]:
    """Items often bought with the customer's favourites (`item_counts`: what the customer
    bought, by name), best first, leaving out everything the customer has bought."""
    if not item_counts:
        return []
    favourites = sorted(item_counts.items(), key=lambda pair: (-pair[1], pair[0]))
    favourites = favourites[:FAVOURITES_USED]
    weight = sum(count for _, count in favourites)
    chain = chain_counts(aggregates, now)
    if weight <= 0 or not chain:
        return []
    scores: dict[str, float] = {}
    for favourite, bought in favourites:
        counts = chain.get(favourite)
        baskets = counts.get(favourite, 0) if counts else 0
        if not counts or baskets <= 0:
            continue
        share = bought / weight
        for other, together in counts.items():
            if together >= MIN_PAIR_BASKETS and other not in item_counts:
                scores[other] = scores.get(other, 0.0) + share * together / baskets
    ranked = sorted(scores.items(), key=lambda pair: (-round(pair[1], 12), pair[0]))
    return [name for name, _ in ranked[:RECOMMENDED_KEPT]]
