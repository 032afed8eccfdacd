"""One outlier moves a venue's average by a bounded step, whatever its size."""

from __future__ import annotations

from engine.core.aggregates import OUTLIER_FACTOR, Aggregates


def chain_with(visits: int, amount: float) -> Aggregates:
    shard = Aggregates()
    for _ in range(visits):
        shard.record_visit("v1", amount)
    return shard


def average(aggregates: Aggregates) -> float:
    counts = aggregates.venue_counts("v1")
    assert counts is not None
    return counts[1] / counts[0]


def test_an_outlier_adds_at_most_the_cap_to_the_venue_total() -> None:
    shard = chain_with(100, 30.0)
    view = Aggregates({}, shard.own)  # the day's chain view
    cap = view.amount_cap("v1")
    assert cap is not None and 29 * OUTLIER_FACTOR < cap < 31 * OUTLIER_FACTOR
    shard.record_visit("v1", 90_000.0, cap)
    assert average(shard) < 30 + cap / 101 + 0.01
    assert average(shard) < 34  # without the cap: about 921


def test_ordinary_amounts_are_never_capped() -> None:
    shard = chain_with(50, 30.0)
    cap = Aggregates({}, shard.own).amount_cap("v1")
    assert cap is not None
    shard.record_visit("v1", 120.0, cap)
    assert shard.venue_counts("v1") == [51, 30.0 * 50 + 120.0]


def test_a_new_venue_is_capped_by_the_chain_median_check() -> None:
    shard = Aggregates()
    for _ in range(10):
        shard.move("h:check", None, 40.0)
    cap = Aggregates({}, shard.own).amount_cap("new-venue")
    assert cap is not None and 39 * OUTLIER_FACTOR < cap < 41 * OUTLIER_FACTOR
    assert Aggregates().amount_cap("v1") is None  # the chain's very first visit
