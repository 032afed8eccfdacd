"""Population aggregates: venue averages and streaming quantiles, per shard and chain-wide.

Each shard keeps its own counts, written with its state in the same transaction, so a replay
never counts a visit twice. Conditions read the chain-wide figure as of the start of the
day (UTC) of the event or timer being applied: the sum of every shard's snapshot at that day
boundary. A shard applies a day only once every shard has passed its start (see
engine.flow.processor), so what a condition reads depends on event time alone, never on batch
sizes, shard or process counts, or the source.

Quantiles come from fixed-bin histograms on a logarithmic scale (5% wide bins from 0.5 to
about 2 million): bounded memory, exact merging across shards, about 2.5% relative error.

Keys of the aggregate hash:
    v:<venue_id>        [visits, total amount]
    h:spend             customers' lifetime spend   (one entry per customer, moved as it grows)
    h:check             customers' average check    (likewise)
    h:visits            customers' number of visits (likewise)
    h:venue:<venue_id>  the venue's visit amounts   (one entry per visit)
    co:<period>:<item>  baskets with the item, and with each other item (engine.core.baskets),
                        kept in `Aggregates.baskets` and left out of day snapshots
    baskets             this shard's basket counts as of the start of the week, as JSON text
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

SPEND_HISTOGRAM = "h:spend"
CHECK_HISTOGRAM = "h:check"
VISITS_HISTOGRAM = "h:visits"
BIN_RATIO = 1.05
BIN_FLOOR = 0.5
BIN_COUNT = 320
OUTLIER_FACTOR = 10.0
"""A visit adds at most this many times the venue's median amount to its total. On the demo
chain (`journeys demo`: 21,005 visits at 5 venues) the largest visit is 5.5 times its venue's
median, and the commands are the same with no cap at all, so real checks are not capped."""
_LOG_RATIO = math.log(BIN_RATIO)
BASKET_PREFIX = "co:"
"""Keys of the live basket counts (engine.core.baskets describes them)."""
BASKET_PERIOD_MS = 91 * 86_400_000
"""Baskets are counted per period of 13 weeks,"""
BASKET_PERIOD_START_MS = 4 * 86_400_000
"""counted from a Monday (1970-01-05)."""
BASKET_ITEMS_COUNTED = 12
"""A basket counts the distinct names among its first items."""
BASKET_ITEMS_KEPT = 400
"""Items counted per shard and period."""
BASKET_PARTNERS_KEPT = 64
"""Partners counted per item, shard and period."""


def venue_histogram(venue_id: str) -> str:
    """The name of a venue's histogram of visit amounts."""
    return f"h:venue:{venue_id}"


@lru_cache(maxsize=1 << 16)  # amounts repeat (prices, visit counts): a lookup beats a log
def bin_of(value: float) -> int:
    """The histogram bin of a non-negative amount (0 for amounts below the floor)."""
    if value <= BIN_FLOOR:
        return 0
    return min(BIN_COUNT - 1, 1 + int(math.log(value / BIN_FLOOR) / _LOG_RATIO))


_BIN_KEYS = tuple(str(index) for index in range(BIN_COUNT))
"""The key of each bin in a stored histogram."""


def bin_value(index: int) -> float:
    """A representative amount of a bin (its geometric middle)."""
    if index == 0:
        return 0.0
    return BIN_FLOOR * BIN_RATIO ** (index - 0.5)


class Aggregates:
    """One shard's aggregates plus a snapshot of the other shards'."""

    def __init__(self, own: dict[str, Any] | None = None,
                 others: dict[str, Any] | None = None) -> None:
        self.own: dict[str, Any] = own if own is not None else {}
        self._others: dict[str, Any] = others if others is not None else {}
        self.changed: set[str] = set()
        self.baskets: dict[str, dict[str, int]] = {}
        """Live basket counts by key (engine.core.baskets): stored with the aggregates but
        left out of day snapshots, which carry them once a week instead."""
        if any(key.startswith(BASKET_PREFIX) for key in self.own):
            for key in [k for k in self.own if k.startswith(BASKET_PREFIX)]:
                value = self.own.pop(key)
                if isinstance(value, dict):
                    self.baskets[key] = value
        self._own_dense: dict[str, list[int]] = {}
        self._others_cumulative: dict[str, list[int]] = {}
        self._quantiles: dict[tuple[str, float], float | None] = {}

    @property
    def others(self) -> dict[str, Any]:
        """The other shards' aggregates, as of the last refresh."""
        return self._others

    @others.setter
    def others(self, value: dict[str, Any]) -> None:
        self._others = value
        self._others_cumulative.clear()
        self._quantiles.clear()

    # ---------------------------------------------------------------- writing
    def record_visit(self, venue_id: str, amount: float, cap: float | None = None) -> None:
        """Count a visit: its amount, at most `cap`, in the venue's total (for the average),
        and its whole amount in the venue's histogram (for quantiles)."""
        key = f"v:{venue_id}"
        counts = self.own.get(key)
        if counts is None:
            counts = self.own[key] = [0, 0.0]
        counts[0] += 1
        counts[1] = round(counts[1] + (cap if cap is not None and cap < amount else amount), 2)
        self.changed.add(key)
        self._shift(venue_histogram(venue_id), None, bin_of(amount))

    def move(self, name: str, old: float | None, new: float | None) -> None:
        """Move one member of histogram `name` from the bin of `old` to the bin of `new`."""
        old_bin = None if old is None else bin_of(old)
        new_bin = None if new is None else bin_of(new)
        if old_bin != new_bin:
            self._shift(name, old_bin, new_bin)

    def _shift(self, name: str, old_bin: int | None, new_bin: int | None) -> None:
        """Move one member of histogram `name` between two different bins (None: none)."""
        if self._quantiles:
            self._quantiles.clear()
        dense = self._own_dense.get(name)
        histogram: dict[str, int] | None = self.own.get(name)
        if histogram is None:
            histogram = self.own[name] = {}
        if old_bin is not None:
            if dense is not None:
                dense[old_bin] -= 1
            key = _BIN_KEYS[old_bin]
            left = histogram.get(key, 0) - 1
            if left:
                histogram[key] = left
            else:
                histogram.pop(key, None)
        if new_bin is not None:
            if dense is not None:
                dense[new_bin] += 1
            key = _BIN_KEYS[new_bin]
            histogram[key] = histogram.get(key, 0) + 1
        self.changed.add(name)

    def record_basket(self, items: list[dict[str, Any]], at: int) -> None:
        """Count the basket of a visit applied at `at` in `baskets`: for each of its item
        names, the basket and each other name in it (engine.core.baskets)."""
        if not items:
            return
        names: list[str] = [item["name"] for item in items[:BASKET_ITEMS_COUNTED]]
        if len(names) > 1 and len(set(names)) < len(names):
            names = list(dict.fromkeys(names))
        if "" in names:
            names.remove("")
        period = (at - BASKET_PERIOD_START_MS) // BASKET_PERIOD_MS
        prefix = _BASKET_PREFIXES.get(period)
        if prefix is None:
            prefix = _BASKET_PREFIXES[period] = f"{BASKET_PREFIX}{period}:"
        live = self.baskets
        changed = self.changed
        size = len(names)
        for name in names:
            key = prefix + name
            counts = live.get(key)
            if counts is None:
                if sum(1 for k in live if k.startswith(prefix)) >= BASKET_ITEMS_KEPT:
                    continue
                counts = live[key] = {}
            if len(counts) + size <= BASKET_PARTNERS_KEPT + 1:
                for other in names:  # the item itself too: its own count
                    counts[other] = counts.get(other, 0) + 1
            else:
                counts[name] = counts.get(name, 0) + 1
                for other in names:
                    count = counts.get(other)
                    if count is not None:
                        if other != name:
                            counts[other] = count + 1
                    elif len(counts) <= BASKET_PARTNERS_KEPT:
                        counts[other] = 1
            changed.add(key)

    # ---------------------------------------------------------------- reading
    def amount_cap(self, venue_id: str) -> float | None:
        """The most one visit adds to the venue's total: OUTLIER_FACTOR times the venue's
        median amount, or the chain's median check for a venue not seen yet (None before
        the chain's first visit). One mistyped amount then moves the venue's average by a
        bounded step rather than by its own size."""
        median = self.quantile(venue_histogram(venue_id), 0.5)
        if median is None:
            median = self.quantile(CHECK_HISTOGRAM, 0.5)
        return None if median is None else OUTLIER_FACTOR * max(median, BIN_FLOOR)

    def venue_counts(self, venue_id: str | None) -> list[float] | None:
        """[visits, total amount] of the venue across the chain, or None if never seen."""
        if venue_id is None:
            return None
        key = f"v:{venue_id}"
        own, other = self.own.get(key), self.others.get(key)
        if other is None:
            return own
        if own is None:
            return other
        return [own[0] + other[0], own[1] + other[1]]

    def _dense_own(self, name: str) -> list[int]:
        """This shard's histogram as one count per bin, kept current by `move`."""
        dense = self._own_dense.get(name)
        if dense is None:
            dense = self._own_dense[name] = _dense(self.own.get(name))
        return dense

    def _cumulative_others(self, name: str) -> list[int]:
        """The other shards' running counts per bin, computed once per refresh."""
        cumulative = self._others_cumulative.get(name)
        if cumulative is None:
            cumulative = self._others_cumulative[name] = list(
                itertools.accumulate(_dense(self._others.get(name))))
        return cumulative

    def percentile(self, name: str, value: float | None) -> float | None:
        """The share (0 to 100) of the population below `value`, counting half of its bin."""
        if value is None:
            return None
        own, others = self._dense_own(name), self._cumulative_others(name)
        total = sum(own) + others[-1]
        if total <= 0:
            return None
        target = bin_of(value)
        others_below = others[target - 1] if target else 0
        below = sum(own[:target]) + others_below
        same = own[target] + others[target] - others_below
        return round(100.0 * (below + same / 2) / total, 2)

    def quantile(self, name: str, share: float) -> float | None:
        """The amount below which `share` (0 to 1) of the population lies."""
        if not self.own:  # a day's view never changes: compute each quantile once
            key = (name, share)
            if key not in self._quantiles:
                self._quantiles[key] = self._quantile(name, share)
            return self._quantiles[key]
        return self._quantile(name, share)

    def _quantile(self, name: str, share: float) -> float | None:
        cumulative = self._cumulative_others(name)
        if self.own:  # else this shard's counts are all zero
            cumulative = list(map(operator.add, itertools.accumulate(self._dense_own(name)),
                                  cumulative))
        if cumulative[-1] <= 0:
            return None
        at = bisect.bisect_left(cumulative, share * cumulative[-1])
        return round(bin_value(min(at, BIN_COUNT - 1)), 2)

    # ---------------------------------------------------------------- transactions
    def stored(self) -> dict[str, Any]:
        """What the shard's aggregate hash holds: the aggregates and the live basket
        counts."""
        return {**self.own, **self.baskets} if self.baskets else self.own

    def snapshot_own(self) -> dict[str, Any]:
        return {key: (dict(value) if isinstance(value, dict) else list(value))
                for key, value in self.own.items()}

    def restore_own(self, snapshot: dict[str, Any]) -> None:
        self.own = snapshot
        self.changed.clear()
        self._own_dense.clear()


_BASKET_PREFIXES: dict[int, str] = {}
"""The key prefix of each basket period counted so far."""


def _dense(histogram: dict[str, int] | None) -> list[int]:
    counts = [0] * BIN_COUNT
    for key, count in (histogram or {}).items():
        counts[int(key)] += count
    return counts


def merge(shards: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several shards' aggregates; text values (documents that few conditions
    read, such as the basket counts of engine.core.baskets) are listed, one per shard."""
    total: dict[str, Any] = {}
    for aggregates in shards:
        for key, value in aggregates.items():
            if isinstance(value, dict):
                into: dict[str, int] = total.setdefault(key, {})
                for bin_key, count in value.items():
                    into[bin_key] = into.get(bin_key, 0) + count
            elif isinstance(value, str):  # a document read when needed: one per shard
                total.setdefault(key, []).append(value)
            else:
                pair = total.setdefault(key, [0, 0.0])
                pair[0] += value[0]
                pair[1] = round(pair[1] + value[1], 2)
    return total
