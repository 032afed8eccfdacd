"""Venue statistics: each shard counts its own visits; conditions read the chain-wide figure.

A shard's own counts change with every visit it applies and are written with its state, so
replays never count a visit twice. The other shards' counts come from a snapshot refreshed
when the shard's clock enters a new hour, so `venue.avg_amount` covers every customer of the
venue and a single-process replay still reads the same figures every time.
"""

from __future__ import annotations

from collections.abc import Iterable

VenueCounts = dict[str, list[float]]


class VenueBook:
    """This shard's venue counts plus a snapshot of the other shards'."""

    def __init__(self, own: VenueCounts | None = None,
                 others: VenueCounts | None = None) -> None:
        self.own: VenueCounts = own if own is not None else {}
        self.others: VenueCounts = others if others is not None else {}
        self.changed: set[str] = set()

    def record_visit(self, venue_id: str, amount: float) -> None:
        counts = self.own.setdefault(venue_id, [0, 0.0])
        counts[0] += 1
        counts[1] = round(counts[1] + amount, 2)
        self.changed.add(venue_id)

    def counts(self, venue_id: str | None) -> list[float] | None:
        """[visits, total amount] of the venue across the chain, or None if never seen."""
        if venue_id is None:
            return None
        own = self.own.get(venue_id)
        other = self.others.get(venue_id)
        if other is None:
            return own
        if own is None:
            return other
        return [own[0] + other[0], own[1] + other[1]]

    def snapshot_own(self) -> VenueCounts:
        return {venue: list(counts) for venue, counts in self.own.items()}

    def restore_own(self, snapshot: VenueCounts) -> None:
        self.own = snapshot
        self.changed.clear()


def merge_counts(shards: Iterable[VenueCounts]) -> VenueCounts:
    """The sum of several shards' venue counts."""
    total: VenueCounts = {}
    for counts in shards:
        for venue, (visits, amount) in counts.items():
            into = total.setdefault(venue, [0, 0.0])
            into[0] += visits
            into[1] = round(into[1] + amount, 2)
    return total
