"""Basket co-occurrence: counting, bounds, the weekly chain-wide counts, the score, and
`customer.recommended_items` in conditions and validation."""

from __future__ import annotations

import random

import orjson
import pytest

from engine.core import baskets
from engine.core.aggregates import BASKET_ITEMS_COUNTED, Aggregates, merge
from engine.core.baskets import (
    WEEKLY_KEY,
    basket_key,
    chain_counts,
    decode_counts,
    encode_counts,
    pass_day,
    period_of,
    recommended_items,
    record_basket,
)
from engine.core.scope import ScopeContext, build_scope
from engine.core.state import CustomerState
from engine.testing import JourneyTester
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.expressions import parse_expression
from journeys_dsl.loader import load_journey_text

DAY = 86_400_000
MONDAY = 1_741_564_800_000
"""2025-03-10T00:00:00Z, a Monday."""


def items(*names: str) -> list[dict[str, str]]:
    return [{"name": name} for name in names]


def counted(aggregates: Aggregates, item: str, at: int = MONDAY) -> dict[str, int]:
    return aggregates.baskets[basket_key(period_of(at), item)]


def test_a_basket_counts_each_item_and_each_pair_once() -> None:
    aggregates = Aggregates()
    record_basket(aggregates, items("steak", "red wine", "steak", ""), MONDAY)
    record_basket(aggregates, items("steak"), MONDAY + DAY)
    record_basket(aggregates, [], MONDAY)
    assert counted(aggregates, "steak") == {"steak": 2, "red wine": 1}
    assert counted(aggregates, "red wine") == {"red wine": 1, "steak": 1}
    assert set(aggregates.baskets) == set(aggregates.changed)
    assert aggregates.own == {}  # day snapshots stay as they were


def test_counts_are_bounded() -> None:
    aggregates = Aggregates()
    record_basket(aggregates, items(*[f"item{i}" for i in range(20)]), MONDAY)
    # the distinct names among the first BASKET_ITEMS_COUNTED items
    assert len(aggregates.baskets) == BASKET_ITEMS_COUNTED == 12
    # each item keeps at most PARTNERS_KEPT partners (and its own count)
    for group in range(10):
        record_basket(aggregates, items("hub", *[f"p{group}-{i}" for i in range(11)]), MONDAY)
    hub = counted(aggregates, "hub")
    assert len(hub) == baskets.PARTNERS_KEPT + 1 and hub["hub"] == 10
    assert hub["p0-0"] == 1 and "p9-10" not in hub
    # at most ITEMS_KEPT items per shard and period; a new name beyond is not counted
    for start in range(0, 420, 10):
        record_basket(aggregates, items(*[f"n{i}" for i in range(start, start + 10)]), MONDAY)
    prefix = basket_key(period_of(MONDAY), "")
    assert sum(key.startswith(prefix) for key in aggregates.baskets) == baskets.ITEMS_KEPT
    record_basket(aggregates, items("hub", "brand new"), MONDAY)
    assert counted(aggregates, "hub")["hub"] == 11
    assert basket_key(period_of(MONDAY), "brand new") not in aggregates.baskets


def test_the_weekly_counts_are_written_at_the_start_of_a_week() -> None:
    aggregates = Aggregates()
    record_basket(aggregates, items("steak", "red wine"), MONDAY - 3 * DAY)
    pass_day(aggregates, MONDAY - DAY)  # a Sunday: nothing changes
    assert WEEKLY_KEY not in aggregates.own
    pass_day(aggregates, MONDAY)
    assert decode_counts(aggregates.own[WEEKLY_KEY], MONDAY) == {
        "steak": {"steak": 1, "red wine": 1}, "red wine": {"red wine": 1, "steak": 1}}
    assert WEEKLY_KEY in aggregates.changed
    # at the start of the period after next the old counts are dropped (and the commit
    # deletes their keys)
    aggregates.changed.clear()
    later = baskets.WEEK_START_MS + (period_of(MONDAY) + 2) * baskets.PERIOD_MS
    old_keys = set(aggregates.baskets)
    pass_day(aggregates, later)
    assert aggregates.baskets == {}
    assert aggregates.changed == old_keys | {WEEKLY_KEY}
    assert decode_counts(aggregates.own[WEEKLY_KEY], later) == {}


def test_the_window_is_this_period_and_the_one_before() -> None:
    aggregates = Aggregates()
    start = MONDAY + baskets.WEEK_START_MS  # any time: periods are counted from a Monday
    period_start = baskets.WEEK_START_MS + period_of(start) * baskets.PERIOD_MS
    for at in (period_start - baskets.PERIOD_MS - DAY, period_start - DAY, period_start):
        record_basket(aggregates, items("steak", "red wine"), at)
    week = period_start + 7 * DAY
    assert chain_counts(aggregates, week)["steak"] == {"steak": 2, "red wine": 2}


def shard_of(customer: int, shards: int) -> int:
    return customer % shards


def test_shards_read_the_same_counts_and_recommendations_as_one() -> None:
    rng = random.Random(7)
    menu = ["steak", "red wine", "fries", "salad", "pasta", "lemonade", "tiramisu"]
    visits = [(rng.randrange(50), MONDAY + rng.randrange(6 * DAY),
               items(*rng.sample(menu, rng.randint(1, 4)))) for _ in range(400)]
    views = []
    for shards in (1, 3):
        own = [Aggregates() for _ in range(shards)]
        for customer, at, basket in visits:
            record_basket(own[shard_of(customer, shards)], basket, at)
        for aggregates in own:
            pass_day(aggregates, MONDAY + 7 * DAY)
        blobs = [orjson.dumps(aggregates.own) for aggregates in own]
        views.append(Aggregates({}, merge(orjson.loads(blob) for blob in blobs)))
    now = MONDAY + 8 * DAY
    assert chain_counts(views[0], now) == chain_counts(views[1], now)
    for bought in ({"steak": 3}, {"pasta": 2, "salad": 1}, {"tiramisu": 1, "fries": 1}):
        assert recommended_items(views[0], bought, now) == recommended_items(
            views[1], bought, now)


def view_of(counts: dict[str, dict[str, int]]) -> Aggregates:
    """The view of one shard whose weekly text holds `counts` (by item)."""
    live = {basket_key(period_of(MONDAY), item): value for item, value in counts.items()}
    return Aggregates({}, merge([{WEEKLY_KEY: encode_counts(live)}]))


def test_the_score_weights_favourites_and_leaves_out_what_the_customer_buys() -> None:
    view = view_of({
        "steak": {"steak": 10, "red wine": 8, "fries": 4, "salad": 2},
        "salad": {"salad": 10, "lemonade": 5, "fries": 5},
    })
    # P(red wine | steak) = 0.8 beats P(fries | steak) = 0.4; salad: 2 baskets < support 3
    assert recommended_items(view, {"steak": 5}, MONDAY) == ["red wine", "fries"]
    # what the customer buys is left out
    assert recommended_items(view, {"steak": 5, "red wine": 1}, MONDAY) == ["fries"]
    # fries: 0.5 * 0.4 + 0.5 * 0.5 = 0.45; lemonade 0.25; red wine 0.4
    assert recommended_items(view, {"steak": 2, "salad": 2}, MONDAY) == [
        "fries", "red wine", "lemonade"]
    # ties go to the alphabetically first
    assert recommended_items(view, {"salad": 1}, MONDAY) == ["fries", "lemonade"]
    assert recommended_items(view, {}, MONDAY) == []
    assert recommended_items(view, {"pasta": 4}, MONDAY) == []
    assert recommended_items(Aggregates(), {"steak": 4}, MONDAY) == []


def test_damaged_weekly_counts_read_as_none() -> None:
    texts = ["{not json", "[1, 2]", encode_counts({"co:1:steak": 3})[:-4], "",  # type: ignore[dict-item]
             encode_counts({"co:1:steak": 3})]  # type: ignore[dict-item]
    view = Aggregates({}, merge({WEEKLY_KEY: text} for text in texts))
    assert recommended_items(view, {"steak": 1}, MONDAY) == []
    assert chain_counts(view, MONDAY) == {}


def test_stored_aggregates_keep_live_counts_apart_from_day_snapshots() -> None:
    aggregates = Aggregates()
    aggregates.record_visit("v1", 20.0)
    record_basket(aggregates, items("steak", "red wine"), MONDAY)
    stored = aggregates.stored()
    assert set(stored) == {"v:v1", "h:venue:v1", *aggregates.baskets}
    loaded = Aggregates(orjson.loads(orjson.dumps(stored)))
    assert loaded.baskets == aggregates.baskets
    assert loaded.own == aggregates.own


def test_customer_recommended_items_in_conditions() -> None:
    state = CustomerState("fan")
    state.profile.item_counts = {"steak": 3}
    context = ScopeContext(view_of({"steak": {"steak": 10, "red wine": 9, "fries": 3}}))
    scope = build_scope(state, MONDAY, context)
    assert parse_expression("customer.recommended_items").evaluate(scope) == [
        "red wine", "fries"]
    assert parse_expression("customer.recommended_item").evaluate(scope) == "red wine"
    assert parse_expression("'fries' in customer.recommended_items").test(scope)
    assert parse_expression("len(customer.recommended_items) == 2").test(scope)
    # an empty list and null for a customer with nothing to recommend
    empty = build_scope(CustomerState("new"), MONDAY, context)
    assert parse_expression("customer.recommended_items").evaluate(empty) == []
    assert parse_expression("customer.recommended_item == null").test(empty)


JOURNEY = """\
journey: j
version: 1
entry:
  event: visit
  when: "customer.recommended_itmes != null"
steps:
  - id: a
    actions:
      - send: email
        template: t
"""


def test_validation_knows_the_fields() -> None:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(JOURNEY, "j.yaml")
    problem = caught.value.problems[0]
    assert (problem.line, problem.col) == (5, 19)
    assert "did you mean 'recommended_items'?" in problem.message
    fixed = JOURNEY.replace("customer.recommended_itmes != null",
                            "'red wine' in customer.recommended_items")
    assert load_journey_text(fixed, "j.yaml").steps
    typed = JOURNEY.replace("customer.recommended_itmes != null",
                            "customer.recommended_item == 'red wine'")
    assert load_journey_text(typed, "j.yaml").steps


COUNTING = """
journey: pairing
version: 1
entry:
  event: visit
  when: "'red wine' in customer.recommended_items"
steps:
  - id: hello
    actions: [{send: email, template: pairing_suggestion}]
"""
NOT_COUNTING = COUNTING.replace("journey: pairing", "journey: plain").replace(
    "'red wine' in customer.recommended_items", "customer.visit_count >= 2")


@pytest.mark.parametrize(("journey", "counts"), [(COUNTING, True), (NOT_COUNTING, False)])
def test_baskets_are_counted_only_while_a_journey_reads_recommendations(
        journey: str, counts: bool) -> None:
    tester = JourneyTester(journey)
    tester.visit(MONDAY + DAY, items=items("steak", "red wine"))
    assert bool(tester.aggregates.baskets) is counts
