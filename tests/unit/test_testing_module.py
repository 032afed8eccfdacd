"""`engine.testing`: the shipped fake-clock harness gives what the engine gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.events import EventError
from engine.testing import DAY_MS, JourneyTester

ROOT = Path(__file__).resolve().parents[2]
LOST_REGULAR = ROOT / "examples" / "journeys" / "02_lost_regular.yaml"

NEWCOMER_TEXT = """\
journey: hello
version: 1
entry:
  event: visit
  when: "customer.visit_count == 1"
steps:
  - id: thanks
    actions: [{send: email, template: thanks}]
  - id: again
    after: 7d
    actions: [{send: sms, template: again}]
"""


def test_the_docstring_example_holds() -> None:
    tester = JourneyTester(LOST_REGULAR)
    for day in (0, 10, 20, 30):
        tester.visit(tester.start_ms + day * DAY_MS)
    tester.advance(days=120)
    assert tester.sent() == [("miss_you", 75.0), ("incentive", 90.0), ("last_reminder", 97.0)]
    assert tester.stats["lost_regular@1|completed"] == 1


def test_a_visit_ends_the_journey_before_its_next_step() -> None:
    tester = JourneyTester(LOST_REGULAR)
    for day in (0, 10, 20, 30):
        tester.visit(tester.start_ms + day * DAY_MS)
    tester.advance(tester.start_ms + 80 * DAY_MS)  # the first message went at day 75
    tester.visit()
    tester.advance(days=60)
    assert [step for step, _ in tester.sent()] == ["miss_you"]
    assert tester.stats["lost_regular@1|exit:came_back"] == 1


def test_journey_text_and_the_clock_drive_steps() -> None:
    tester = JourneyTester(NEWCOMER_TEXT, customer_id="zoe")
    tester.visit()
    assert tester.sent() == [("thanks", 0.0)]
    tester.advance(days=6)
    assert len(tester.commands) == 1
    tester.advance(days=1)
    assert tester.sent() == [("thanks", 0.0), ("again", 7.0)]
    assert tester.commands[-1]["customer_id"] == "zoe"
    assert tester.commands[-1]["channel"] == "sms"


def test_the_shipped_segments_are_read_by_default() -> None:
    tester = JourneyTester(NEWCOMER_TEXT)
    tester.visit()
    assert tester.stats["hello@1|entered_segment:new"] == 1


def test_an_invalid_event_is_refused_with_the_engine_s_reason() -> None:
    tester = JourneyTester(NEWCOMER_TEXT)
    with pytest.raises(EventError, match="amount"):
        tester.event("visit", venue_id="v1")
    assert tester.commands == []


def test_a_customer_without_an_address_is_not_sent_to() -> None:
    tester = JourneyTester(NEWCOMER_TEXT, with_addresses=False)
    tester.visit()
    assert tester.commands == []
