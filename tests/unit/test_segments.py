"""Segments, loyalty tiers and the streaming population aggregates behind them."""

from __future__ import annotations

import random

import pytest

from engine.core.aggregates import CHECK_HISTOGRAM, SPEND_HISTOGRAM, Aggregates, merge
from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.runtime import POINTS_EXPIRY, Effects, JourneyRuntime
from engine.core.scope import CustomerView
from engine.core.state import CustomerState
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.segments import load_segments, load_segments_text

DAY = 86_400_000
T0 = 1_741_000_000_000


def test_percentiles_and_quantiles_are_within_the_bin_error() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(3.5, 0.6) for _ in range(20_000)]
    shards = [Aggregates() for _ in range(4)]
    for index, value in enumerate(values):
        shards[index % 4].move(SPEND_HISTOGRAM, None, value)
    whole = Aggregates(shards[0].own, merge(s.own for s in shards[1:]))
    ordered = sorted(values)
    for share in (0.1, 0.25, 0.5, 0.75, 0.9):
        exact = ordered[int(share * len(ordered))]
        estimate = whole.quantile(SPEND_HISTOGRAM, share)
        assert estimate == pytest.approx(exact, rel=0.05)
        percentile = whole.percentile(SPEND_HISTOGRAM, exact)
        assert percentile == pytest.approx(100 * share, abs=2.0)


def test_moving_a_member_keeps_the_population_size() -> None:
    aggregates = Aggregates()
    aggregates.move(SPEND_HISTOGRAM, None, 10.0)
    aggregates.move(SPEND_HISTOGRAM, 10.0, 500.0)
    aggregates.move(SPEND_HISTOGRAM, None, 20.0)
    assert sum(aggregates.own[SPEND_HISTOGRAM].values()) == 2
    assert aggregates.percentile(SPEND_HISTOGRAM, 500.0) == 75.0
    assert aggregates.percentile(SPEND_HISTOGRAM, 1.0) == 0.0


def test_default_segments_load() -> None:
    model = load_segments()
    assert [rule.segment_id for rule in model.activity] == [
        "sleeping", "loyal", "regular", "new", "occasional"]
    assert {"vip", "at_risk"} <= set(model.segment_ids())
    assert [tier.tier_id for tier in model.tiers] == ["top", "middle", "starter"]


@pytest.mark.parametrize(("text", "line", "col", "fragment"), [
    ("activity:\n  - id: new\n    when: \"customer.vist_count == 1\"\n", 3, 21,
     "unknown field 'vist_count' of the customer; did you mean 'visit_count'?"),
    ("activity:\n  - id: new\n  - id: new\n", 3, 9, "duplicate segment id 'new'"),
    ("segments:\n  - id: vip\n    when: \"customer.segment == 'new'\"\n", 3, 11,
     "'customer.segment' is computed from this file"),
    ("segments:\n  - id: vip\n    when: \"event.amount > 3\"\n", 3, 12,
     "segments are computed from the customer's profile"),
    ("segmnts:\n  - id: vip\n", 1, 1, "did you mean 'segments'?"),
    ("loyalty:\n  tiers:\n    - id: top\n      points_per_eur: lots\n", 4, 23,
     "points_per_eur must be a number"),
])
def test_bad_segment_files_are_refused_with_positions(text: str, line: int, col: int,
                                                      fragment: str) -> None:
    with pytest.raises(JourneyValidationError) as caught:
        load_segments_text(text, "segments.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"segments.yaml:{line}:{col}:") and fragment in p
               for p in problems), problems


class Guest:
    def __init__(self, runtime: JourneyRuntime, aggregates: Aggregates, name: str) -> None:
        self.runtime, self.aggregates = runtime, aggregates
        self.state = CustomerState(name)
        self.effects = Effects()
        self.count = 0

    def visit(self, day: float, amount: float = 30.0) -> None:
        self.count += 1
        event = validate_event({"event_id": f"{self.state.customer_id}-{self.count}",
                                "customer_id": self.state.customer_id, "type": "visit",
                                "ts": int(T0 + day * DAY), "venue_id": "v1",
                                "amount": amount})
        self.runtime.apply_event(self.state, event, self.runtime.context(self.aggregates),
                                 self.effects)

    def view(self, day: float) -> CustomerView:
        return CustomerView(self.state, int(T0 + day * DAY),
                            self.runtime.context(self.aggregates))


def test_activity_segments_follow_the_visits_and_the_clock() -> None:
    runtime = JourneyRuntime(Catalog([]), customer_model=load_segments())
    ann = Guest(runtime, Aggregates(), "ann")
    ann.visit(0)
    assert ann.view(1).get("segment") == "new"
    for day in (3, 6, 9):
        ann.visit(day)
    assert ann.view(10).get("segment") == "regular"
    assert ann.view(41).get("segment") == "sleeping"  # 32 days after the last visit
    assert "sleeping" in ann.view(41).get("segments")
    # alone in the chain: the median check; four visits in nine days, then 32 days idle
    assert ann.view(41).get("p_alive") < 0.5
    assert list(ann.view(41).get("segments")) == ["sleeping", "medium", "at_risk"]


def test_check_tiers_and_vip_come_from_the_population() -> None:
    runtime = JourneyRuntime(Catalog([]), customer_model=load_segments())
    aggregates = Aggregates()
    guests = [Guest(runtime, aggregates, f"g{i}") for i in range(12)]
    for index, guest in enumerate(guests):
        guest.visit(0, amount=10.0 * (index + 1))
    cheapest, dearest = guests[0].view(1), guests[-1].view(1)
    assert cheapest.get("check_tier") == "low" and dearest.get("check_tier") == "high"
    assert guests[6].view(1).get("check_tier") == "medium"
    assert "vip" in dearest.get("segments") and "vip" not in cheapest.get("segments")
    assert dearest.get("spend_percentile") > 90 > cheapest.get("spend_percentile")
    assert aggregates.percentile(CHECK_HISTOGRAM, 65.0) == pytest.approx(50, abs=5)


LOYALTY = """\
loyalty:
  accrue_points: true
  points_expire_after: 90d
  tiers:
    - id: top
      when: "customer.spend_365d >= 300"
      points_per_eur: 2
    - id: starter
      points_per_eur: 1
"""


def test_loyalty_tiers_accrue_points_and_the_balance_expires() -> None:
    runtime = JourneyRuntime(Catalog([]), customer_model=load_segments_text(LOYALTY, "l.yaml"))
    ann = Guest(runtime, Aggregates(), "ann")
    ann.visit(0, amount=200.0)
    assert ann.state.profile.points == 200  # starter: one point per euro
    ann.visit(10, amount=150.0)
    assert ann.view(10).get("loyalty_tier") == "top"
    assert ann.state.profile.points == 500  # top by then: two per euro
    assert ann.state.armed[POINTS_EXPIRY] == T0 + 100 * DAY
    runtime.fire_due(ann.state, T0 + 101 * DAY, runtime.context(ann.aggregates), ann.effects)
    assert ann.state.profile.points == 0
    assert ann.state.profile.points_expired == 500
    assert ann.effects.stats["loyalty|points_expired"] == 500
    assert ann.view(400).get("loyalty_tier") == "starter"  # a year without spend


def test_rfm_scores_place_the_customer_in_the_population() -> None:
    runtime = JourneyRuntime(Catalog([]), customer_model=load_segments())
    aggregates = Aggregates()
    guests = [Guest(runtime, aggregates, f"g{i}") for i in range(10)]
    for index, guest in enumerate(guests):
        for visit_number in range(index + 1):
            guest.visit(visit_number * 0.5, amount=10.0 * (index + 1))
    top, bottom = guests[-1].view(5), guests[0].view(200)
    assert (top.get("r_score"), top.get("f_score"), top.get("m_score")) == (5, 5, 5)
    assert top.get("rfm") == "555"
    assert (bottom.get("r_score"), bottom.get("f_score"), bottom.get("m_score")) == (1, 1, 1)
    assert guests[4].view(20).get("r_score") == 4  # 15 to 20 days since the last visit
