"""Cached and shortened paths give what the full computation gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.core.aggregates import Aggregates
from engine.core.profile import Profile, _bump, top_key
from engine.core.state import VOUCHER_RETENTION_MS, CustomerState, Enrollment, Voucher


def test_a_cached_amount_cap_follows_the_view_and_its_own_counts() -> None:
    shard = Aggregates()
    for _ in range(20):
        shard.record_visit("v1", 30.0)
    view = Aggregates({}, shard.own)
    first = view.amount_cap("v1")
    assert view.amount_cap("v1") == first
    for _ in range(60):
        shard.record_visit("v1", 90.0)
    view.others = shard.own  # the next day's refresh
    refreshed = view.amount_cap("v1")
    assert refreshed is not None and first is not None and refreshed > first
    for _ in range(200):
        view.record_visit("v1", 5.0)  # a view that counts its own visits is never cached
    assert view.amount_cap("v1") == Aggregates(view.own, shard.own).amount_cap("v1")
    view.restore_own({})
    assert view.amount_cap("v1") == refreshed


def test_stale_vouchers_go_unless_an_enrollment_holds_them() -> None:
    state = CustomerState("c1")
    state.vouchers = {"old": Voucher("o", "j@1", 0, 1_000), "held": Voucher("o", "j@1", 0, 1_000),
                      "fresh": Voucher("o", "j@1", 0, 5_000)}
    state.enrollments["j"] = Enrollment("j", 1, 1, 0, False, 0, 0, vouchers={"o": "held"})
    state.prune_vouchers(1_000 + VOUCHER_RETENTION_MS)
    assert list(state.vouchers) == ["old", "held", "fresh"]
    state.prune_vouchers(1_001 + VOUCHER_RETENTION_MS)
    assert list(state.vouchers) == ["held", "fresh"]


def test_from_dict_ignores_unknown_keys_and_round_trips() -> None:
    profile = Profile(name="Ann", visit_count=3, item_counts={"tea": 2}, tags=["vip"])
    stored = profile.to_dict()
    assert Profile.from_dict({**stored, "retired_field": 1}) == profile
    assert Profile.from_dict({}) == Profile()


def test_ties_go_to_the_alphabetically_first_key() -> None:
    assert top_key({"b": 2, "a": 2, "c": 1}) == "a"
    assert top_key({"b": 3, "a": 2}) == "b"
    assert top_key({"a": 1, "b": 3, "c": 3}) == "b"
    assert top_key({"z": 4}) == "z"
    assert top_key({}) is None
    counts = {f"k{i:02d}": 2 for i in range(24)}
    counts["k05"] = 1
    counts["k07"] = 1
    _bump(counts, "new", 1)  # 25 keys: the lowest, alphabetically first, goes
    assert "k05" not in counts and "k07" in counts and len(counts) == 24


@given(st.dictionaries(st.text(min_size=1, max_size=3), st.integers(1, 5), max_size=30))
def test_the_favourite_is_the_first_of_the_most_frequent_in_text_order(
        counts: dict[str, int]) -> None:
    most = [key for key, count in counts.items() if count == max(counts.values())]
    assert top_key(counts) == (min(most) if most else None)
