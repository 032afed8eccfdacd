"""Items bought together: the chain's basket co-occurrence, and what it recommends.

Counting. The items of each visit (its basket) are counted by the shard that applies it, one
entry per item and period, in `Aggregates.baskets`:

    co:<period>:<item>   {"<item>": baskets with the item, "<other item>": baskets with both}

A period is PERIOD_DAYS days (13 weeks) of event time; a visit counts in the period of the
time it is applied. The counts are stored in the shard's aggregate hash, in the same
transaction as its state, so a replay never counts a basket twice.

Reading. Conditions read the chain's counts as of the start of the week (Monday 00:00 UTC),
the way they read venue averages as of the start of the day (see engine.core.aggregates and
engine.flow.processor): when a shard passes a week boundary it writes its counts of the
window into its aggregates as one JSON text (`baskets`), which every day snapshot of that
week carries; a reader sums the texts of every shard's snapshot, parsed only on a day when a
condition or a message reads them. Counts are whole numbers and every shard passes every
boundary, so what a condition reads is the same whatever the batch sizes, shard count or
process count. Daily snapshots stay as small as before: the counts change there once a week.

Window. The counts written at a week boundary cover the period of that boundary and the one
before: the baskets of the last 13 to 26 weeks. Older periods are dropped then.

Bounds. A basket counts its first BASKET_ITEMS_COUNTED distinct names. Per shard and
period, at most ITEMS_KEPT items are counted and each keeps at most PARTNERS_KEPT partners;
a name beyond a bound is not counted by that shard, so made-up names cannot grow Redis.
Within the bounds (any menu of up to PARTNERS_KEPT + 1 items) the counts are exact and
independent of the shard layout. A shard holds at most 2 * ITEMS_KEPT * (PARTNERS_KEPT + 1)
live counters (about 52,000, some 1.2 MB of JSON at worst) plus their weekly sum; a menu of
30 items with a dozen partners each takes about 800 counters (15 kB).

Score. For a customer whose favourites (their FAVOURITES_USED most bought items) are
a1..an, bought c1..cn times, an item b the customer has never bought scores

    score(b) = sum over i of  ci / (c1 + ... + cn)  *  P(b | ai),   P(b | a) = n(a, b) / n(a)

where n(a) is the number of baskets with a, and n(a, b) the number with both, counting only
pairs seen in at least MIN_PAIR_BASKETS baskets. The RECOMMENDED_KEPT best items, best first
(ties by name), are `customer.recommended_items`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from engine.core.aggregates import BASKET_PREFIX, Aggregates
from engine.core.timeutil import DAY_MS

WEEK_MS = 7 * DAY_MS
WEEK_START_MS = 4 * DAY_MS
"""Weeks start on Monday 00:00 UTC (1970-01-05 was a Monday)."""
PERIOD_DAYS = 91
PERIOD_MS = PERIOD_DAYS * DAY_MS
BASKET_ITEMS_COUNTED = 12
ITEMS_KEPT = 400
PARTNERS_KEPT = 64
FAVOURITES_USED = 3
MIN_PAIR_BASKETS = 3
RECOMMENDED_KEPT = 5
WEEKLY_KEY = "baskets"
"""The aggregate key of a shard's counts as of the start of the week (JSON text)."""


def period_of(at: int) -> int:
    """The counting period of a time (epoch ms)."""
    return (at - WEEK_START_MS) // PERIOD_MS


def basket_key(period: int, item: str) -> str:
    """The key of an item's live counts in one period."""
    return f"{BASKET_PREFIX}{period}:{item}"


# -------------------------------------------------------------------- counting
def record_basket(aggregates: Aggregates, items: list[dict[str, Any]], at: int) -> None:
    """Count the basket of a visit applied at `at` (the distinct names among its first
    BASKET_ITEMS_COUNTED items) in `aggregates`."""
    if not items:
        return
    names = [item["name"] for item in items[:BASKET_ITEMS_COUNTED]]
    if len(names) > 1 and len(set(names)) < len(names):
        names = list(dict.fromkeys(names))
    if "" in names:
        names.remove("")
    live = aggregates.baskets
    changed = aggregates.changed
    period = (at - WEEK_START_MS) // PERIOD_MS
    prefix = _PREFIXES.get(period)
    if prefix is None:
        prefix = _PREFIXES[period] = f"{BASKET_PREFIX}{period}:"
    for name in names:
        key = prefix + name
        counts = live.get(key)
        if counts is None:
            if sum(1 for k in live if k.startswith(prefix)) >= ITEMS_KEPT:
                continue
            counts = live[key] = {}
        if len(counts) + len(names) <= PARTNERS_KEPT + 1:
            for other in names:  # the item itself too: its own count
                counts[other] = counts.get(other, 0) + 1
        else:
            counts[name] = counts.get(name, 0) + 1
            for other in names:
                count = counts.get(other)
                if count is not None:
                    if other != name:
                        counts[other] = count + 1
                elif len(counts) <= PARTNERS_KEPT:
                    counts[other] = 1
        changed.add(key)


_PREFIXES: dict[int, str] = {}
"""The key prefix of each period counted so far."""


def pass_day(aggregates: Aggregates, day: int) -> None:
    """A shard passes the day boundary `day`: at the start of a week, drop the periods no
    longer read and write the counts of the window (`weekly_counts`) as its weekly text,
    which the day snapshots then carry."""
    if (day - WEEK_START_MS) % WEEK_MS:
        return
    live = aggregates.baskets
    if not live and WEEKLY_KEY not in aggregates.own:
        return
    oldest = period_of(day) - 1
    for key in list(live):
        period = key[len(BASKET_PREFIX):].partition(":")[0]
        if not period.lstrip("-").isdigit() or int(period) < oldest:
            del live[key]
            aggregates.changed.add(key)
    aggregates.own[WEEKLY_KEY] = orjson.dumps(weekly_counts(live, day)).decode()
    aggregates.changed.add(WEEKLY_KEY)


def weekly_counts(live: Mapping[str, dict[str, int]], now: int) -> dict[str, dict[str, int]]:
    """Live counts summed over the window read at `now`, by item."""
    out: dict[str, dict[str, int]] = {}
    current = period_of(now)
    for key, counts in live.items():
        period, _, item = key[len(BASKET_PREFIX):].partition(":")
        if period not in (str(current), str(current - 1)):
            continue
        into = out.get(item)
        if into is None:
            out[item] = dict(counts)
        else:
            for other, count in counts.items():
                into[other] = into.get(other, 0) + count
    return out


# -------------------------------------------------------------------- reading
def chain_counts(aggregates: Aggregates, now: int) -> dict[str, dict[str, int]]:
    """The basket counts a condition reads at `now`, by item: the weekly texts of every
    shard's snapshot (from `others`, as `aggregates.merge` lists them), or, where one
    Aggregates both counts and is read (no shards, no snapshots), its own live counts."""
    merged = aggregates.others
    value = merged.get(WEEKLY_KEY)
    if isinstance(value, list):  # parsed and summed at the first read, and kept so
        summed: dict[str, dict[str, int]] = {}
        for text in value:
            for item, counts in _parsed(text).items():
                into = summed.setdefault(item, {})
                for other, count in counts.items():
                    into[other] = into.get(other, 0) + count
        merged[WEEKLY_KEY] = value = summed
    if isinstance(value, dict):
        return value
    if aggregates.baskets:
        return weekly_counts(aggregates.baskets, now)
    own = aggregates.own.get(WEEKLY_KEY)
    return _parsed(own) if isinstance(own, str) else {}


def _parsed(text: Any) -> dict[str, dict[str, int]]:
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


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
