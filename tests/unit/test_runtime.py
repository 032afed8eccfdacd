"""The journey runtime as a pure library: event time passed in, no Redis, no dataflow."""

from __future__ import annotations

import functools
import time
from typing import Any

from engine.core.catalog import Catalog
from engine.core.runtime import MAX_STEPS_PER_ADVANCE, JourneyRuntime, stable_fraction
from engine.testing import JourneyTester
from journeys_dsl.loader import load_journey_text
from journeys_dsl.segments import EMPTY_MODEL

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_741_000_000_000  # 2025-03-03T11:06:40Z
_ids = iter(range(10**9))


def plan(text: str, name: str = "j.yaml") -> Any:
    return load_journey_text(text, name)


Customer = functools.partial(JourneyTester, customer_model=EMPTY_MODEL)
"""One customer driven through a runtime with explicit event times (no segments file)."""


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


LOST = """\
journey: lost
version: 1
entry:
  inactive_for: 45d
  when: "customer.visits_90d >= 4"
re_entry: 90d
exit:
  - event: visit
    reason: came_back
offers:
  ten:
    description: 10 EUR off
    valid_for: 7d
steps:
  - id: miss_you
    actions: [{send: email, template: miss}]
  - id: incentive
    at: day 15
    actions: [{issue: ten}, {send: email, template: ten}]
  - id: last
    at: day 22
    if: "not offer.ten.redeemed"
    actions: [{send: sms, template: last}]
"""


def test_a_67_day_journey_runs_in_milliseconds() -> None:
    ann = Customer(plan(LOST))
    for week in range(4):
        ann.visit(T0 + week * 7 * DAY)
    began = time.perf_counter()
    ann.advance(T0 + 200 * DAY)
    elapsed = time.perf_counter() - began
    assert ann.sent() == [("miss_you", 66.0), ("incentive", 81.0), ("last", 88.0)]
    assert elapsed < 0.05
    assert ann.state.enrollments["lost"].end_reason == "completed"


def test_a_visit_during_the_journey_exits_and_rearms_the_entry() -> None:
    ann = Customer(plan(LOST))
    for week in range(4):
        ann.visit(T0 + week * 7 * DAY)
    ann.advance(T0 + 70 * DAY)
    ann.visit(T0 + 70 * DAY)
    assert ann.sent() == [("miss_you", 66.0)]
    assert ann.state.enrollments["lost"].end_reason == "exit:came_back"
    # the visit re-arms the inactivity entry: five visits in the past 90 days
    assert ann.state.armed["lost"] == T0 + 70 * DAY + 45 * DAY
    ann.visit(T0 + 130 * DAY)  # only two visits in the past 90 days: disarmed
    assert "lost" not in ann.state.armed


def test_re_entry_waits_for_the_pause_after_the_last_exit() -> None:
    ann = Customer(plan(LOST))
    for week in range(4):
        ann.visit(T0 + week * 7 * DAY)
    ann.advance(T0 + 67 * DAY)
    ann.visit(T0 + 67 * DAY)  # exit at day 67; the pause lasts until day 157
    for week in range(1, 4):
        ann.visit(T0 + 67 * DAY + week * 7 * DAY)
    ann.advance(T0 + 150 * DAY)  # armed for day 88 + 45 = 133: inside the pause
    assert [step for step, _ in ann.sent()] == ["miss_you"]
    assert ann.state.enrollments["lost"].seq == 1


WAIT = """\
journey: review
version: 1
entry:
  event: visit
re_entry: always
steps:
  - id: ask
    after: 2h
    actions: [{send: sms, template: ask}]
  - id: wait
    wait_for:
      event: rating
      when: "event.stars >= 4"
      timeout: 3d
      on_timeout: reminder
    next: thanks
  - id: thanks
    actions: [{send: email, template: thanks}]
    next: end
  - id: reminder
    actions: [{send: email, template: reminder}]
"""


def test_a_wait_ends_on_the_event_or_on_its_timeout() -> None:
    ann, bob = Customer(plan(WAIT)), Customer(plan(WAIT), customer_id="bob")
    for customer in (ann, bob):
        customer.visit(T0)
    ann.event("rating", T0 + DAY, stars=2)  # does not meet the condition
    bob.event("rating", T0 + DAY, stars=5)
    for customer in (ann, bob):
        customer.advance(T0 + 10 * DAY)
    assert ann.sent() == [("ask", 0.083), ("reminder", 3.083)]
    assert bob.sent() == [("ask", 0.083), ("thanks", 1.0)]


def test_holdout_is_a_fixed_draw_per_customer_and_journey() -> None:
    share = 0.3
    journey = plan(LOST.replace("re_entry: 90d", "re_entry: 90d\nholdout: 30%"))
    held = 0
    for index in range(400):
        customer = Customer(journey, customer_id=f"c{index}")
        for week in range(4):
            customer.visit(T0 + week * 7 * DAY)
        customer.advance(T0 + 100 * DAY)
        enrollment = customer.state.enrollments["lost"]
        assert enrollment.holdout == (stable_fraction(f"c{index}", "lost") < share)
        assert (customer.sent() == []) == enrollment.holdout
        held += enrollment.holdout
    assert 90 <= held <= 150


def test_a_loop_of_steps_that_never_waits_is_cut() -> None:
    looping = plan("""\
journey: loop
version: 1
entry: {event: visit}
steps:
  - id: a
    after: 1s
    branch:
      - if: "customer.visit_count > 0"
        goto: b
  - id: b
    after: 1s
    next: a
""")
    ann = Customer(looping)
    ann.visit(T0)
    ann.advance(T0 + DAY)
    enrollment = ann.state.enrollments["loop"]
    assert enrollment.end_reason == "step_limit"
    assert ann.effects.stats["loop@1|reached:a"] == MAX_STEPS_PER_ADVANCE // 2
    assert ann.effects.stats["loop@1|step_limit"] == 1


def test_customers_in_flight_keep_their_version() -> None:
    v1 = plan(LOST)
    v2 = plan(LOST.replace("version: 1", "version: 2").replace("at: day 22", "at: day 30"))
    ann = Customer(v1)
    for week in range(4):
        ann.visit(T0 + week * 7 * DAY)
    ann.advance(T0 + 66 * DAY)
    catalog = Catalog([v2])
    catalog.add(v1)
    ann.runtime = JourneyRuntime(catalog)
    ann.advance(T0 + 120 * DAY)
    assert ann.sent() == [("miss_you", 66.0), ("incentive", 81.0), ("last", 88.0)]
    assert {c["version"] for c in ann.effects.commands} == {1}
    assert catalog.current["lost"].version == 2


def test_command_ids_are_deterministic() -> None:
    runs = []
    for _ in range(2):
        ann = Customer(plan(LOST))
        for week in range(4):
            ann.visit(T0 + week * 7 * DAY)
        ann.advance(T0 + 200 * DAY)
        runs.append([c["command_id"] for c in ann.effects.commands])
    assert runs[0] == runs[1] and len(set(runs[0])) == 3


def test_local_send_times_follow_the_customer_time_zone() -> None:
    nudge = plan("""\
journey: nudge
version: 1
entry: {event: visit}
steps:
  - id: evening
    at: "day 1 17:00"
    actions: [{send: push, template: evening}]
""")
    ann = Customer(nudge)
    ann.event("profile", T0 - HOUR, timezone="America/New_York")
    ann.visit(T0)  # 2025-03-03 06:06 in New York
    ann.advance(T0 + 3 * DAY)
    assert ann.effects.commands[0]["send_at"] == "2025-03-04T22:00:00.000Z"  # 17:00 EST
