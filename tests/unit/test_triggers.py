"""Segment triggers (`entry: segment:`) and condition exits (`exit: - when:`): validation,
the runtime's checks after events and on timers, and the timers derived from the rules."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from engine.console.explain import Explainer
from engine.core.aggregates import Aggregates
from engine.core.catalog import Catalog
from engine.core.clock_rules import DAILY, ClockRule, condition_clock, segment_clock
from engine.core.events import validate_event
from engine.core.runtime import Effects, JourneyRuntime
from engine.core.state import CustomerState
from engine.core.triggers import TRIGGER_CLOCK
from engine.testing import DAY_MS, DEFAULT_START_MS, JourneyTester
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.expressions import parse_expression
from journeys_dsl.loader import load_journey_text
from journeys_dsl.plan import SegmentEntry
from journeys_dsl.policies import NO_POLICIES
from journeys_dsl.schema import journey_json_schema
from journeys_dsl.segments import load_segments, load_segments_text, segments_vocabulary

T0 = DEFAULT_START_MS
FILE = "j.yaml"
MODEL = load_segments_text("""\
activity:
  - {id: sleeping, when: "customer.days_since_last_visit > 30"}
  - {id: regular, when: "customer.visits_30d >= 3"}
  - {id: new, when: "customer.visit_count >= 1"}
segments:
  - {id: big_spender, when: "customer.total_spend >= 100"}
  - {id: tagged, when: "has_tag('stop')"}
""", "segments.yaml")
VOCABULARY = MODEL.vocabulary()


def journey(entry: str, *, exits: str = "", re_entry: str = "never",
            steps: str = "  - id: hello\n    actions: [{send: email, template: hello}]\n"
            ) -> str:
    return (f"journey: j\nversion: 1\nentry:\n{entry}re_entry: {re_entry}\n{exits}"
            f"steps:\n{steps}")


def customer_in(text: str) -> JourneyTester:
    return JourneyTester(load_journey_text(text, FILE, VOCABULARY), customer_model=MODEL)


def problems(text: str) -> list[str]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE, VOCABULARY)
    return [str(problem) for problem in caught.value.problems]


# --------------------------------------------------------------------------- validation

def test_a_segment_entry_compiles() -> None:
    plan = load_journey_text(journey("  segment: {leaves: regular}\n"), FILE, VOCABULARY)
    assert plan.entry == SegmentEntry("regular", False, None)


def test_an_unknown_segment_is_refused_with_its_place_and_a_suggestion() -> None:
    found = problems(journey("  segment:\n    enters: big_spendr\n"))
    assert len(found) == 1
    assert found[0].startswith("j.yaml:5:13: 'big_spendr' is not a segment; did you mean "
                               "'big_spender'? (segments in segments.yaml: ")


def test_a_segment_entry_needs_enters_or_leaves() -> None:
    found = problems(journey("  segment: {join: vip}\n"))
    assert found == [
        "j.yaml:4:12: segment needs 'enters' or 'leaves', e.g. segment: {enters: vip} "
        "(at entry.segment)",
        "j.yaml:4:13: unknown key 'join' in segment (at entry.segment.join)"]


def test_a_segment_entry_takes_one_direction() -> None:
    found = problems(journey("  segment:\n    enters: new\n    leaves: regular\n"))
    assert found == ["j.yaml:6:5: segment takes one of 'enters' and 'leaves'; a journey has "
                     "exactly one entry (at entry.segment.leaves)"]


def test_a_segment_entry_condition_cannot_read_the_event() -> None:
    found = problems(journey("  segment: {enters: new}\n  when: \"event.amount > 3\"\n"))
    assert len(found) == 1
    assert found[0].startswith("j.yaml:5:10: a segment entry has no triggering event")


def test_a_condition_exit_cannot_read_the_event() -> None:
    found = problems(journey("  event: visit\n", exits=(
        "exit:\n  - when: \"customer.visits_30d >= 2 and event.amount > 3\"\n")))
    assert len(found) == 1
    assert found[0].startswith("j.yaml:7:41: an exit rule without 'event' is a condition "
                               "exit")


def test_condition_exits_compile_beside_event_exits() -> None:
    plan = load_journey_text(journey("  event: visit\n", exits=(
        "exit:\n  - event: message\n    reason: unsubscribed\n"
        "  - when: \"customer.segment == 'regular'\"\n    reason: regular_now\n"
        "  - when: \"journey.days_in > 3\"\n")), FILE, VOCABULARY)
    assert [rule.reason for rule in plan.exits] == ["unsubscribed"]
    assert [(rule.condition.source, rule.reason) for rule in plan.condition_exits] == [
        ("customer.segment == 'regular'", "regular_now"), ("journey.days_in > 3",
                                                           "condition_2")]
    assert plan.reacts_to == frozenset({"message"})


def test_a_condition_exit_reason_must_be_unique() -> None:
    found = problems(journey("  event: visit\n", exits=(
        "exit:\n  - event: visit\n    reason: back\n"
        "  - when: \"customer.visits_30d >= 2\"\n    reason: back\n")))
    assert found == ["j.yaml:10:13: exit reason 'back' is already used by exit rule 1; "
                     "give each its own reason (at exit[1].reason)"]


def test_a_condition_exit_text_is_checked_against_the_segments_file() -> None:
    found = problems(journey("  event: visit\n", exits=(
        "exit:\n  - when: \"customer.segment == 'regulr'\"\n")))
    assert len(found) == 1
    assert found[0].startswith("j.yaml:7:32: 'regulr' is not a segment; did you mean "
                               "'regular'?")


# --------------------------------------------------------------------------- clock rules

def test_segment_clocks_follow_the_rules_before_them() -> None:
    asleep = frozenset({30 * DAY_MS + 1})  # days_since_last_visit > 30
    assert segment_clock("sleeping", MODEL) == ClockRule(since_last=asleep)
    assert segment_clock("regular", MODEL) == ClockRule(windows=frozenset({30}),
                                                        since_last=asleep)
    assert segment_clock("big_spender", MODEL).timeless
    assert segment_clock("vip", load_segments()) == DAILY  # a percentile: daily


def test_condition_clocks() -> None:
    def clock(source: str) -> ClockRule:
        return condition_clock(parse_expression(source), MODEL)

    assert clock("journey.days_in >= 3") == ClockRule(days_in=frozenset({3 * DAY_MS}))
    assert clock("2 < journey.days_in") == ClockRule(days_in=frozenset({2 * DAY_MS + 1}))
    assert clock("offer.ten.expired") == ClockRule(offers=frozenset({"ten"}))
    assert clock("'sleeping' in customer.segments") == ClockRule(
        since_last=frozenset({30 * DAY_MS + 1}))
    assert clock("customer.days_since_last_visit * 2 > 30").daily  # not a plain threshold
    assert clock("days_since(customer.last_visit_at) > 3").daily
    assert clock("customer.visit_count >= 2 and has_tag('x')").timeless


def test_the_next_change_of_a_window_and_a_threshold() -> None:
    state = CustomerState("ann")
    state.profile.recent_visits = [T0, T0 + 2 * DAY_MS]
    state.profile.last_visit_at = T0 + 2 * DAY_MS
    rule = ClockRule(windows=frozenset({30}), since_last=frozenset({30 * DAY_MS + 1}))
    assert rule.next_change(state, T0 + DAY_MS) == T0 + 30 * DAY_MS  # the first visit leaves
    assert rule.next_change(state, T0 + 30 * DAY_MS) == T0 + 32 * DAY_MS  # the second
    assert rule.next_change(state, T0 + 32 * DAY_MS) == T0 + 32 * DAY_MS + 1  # then > 30 days
    assert rule.next_change(state, T0 + 32 * DAY_MS + 1) is None
    assert DAILY.next_change(state, T0) == (T0 // DAY_MS + 1) * DAY_MS


# --------------------------------------------------------------------------- entries

def test_a_customer_who_becomes_a_member_through_a_visit_enters() -> None:
    customer = customer_in(journey("  segment: {enters: big_spender}\n"))
    customer.visit(T0, amount=40)
    customer.visit(T0 + DAY_MS, amount=40)
    assert customer.sent() == []
    customer.visit(T0 + 2 * DAY_MS, amount=40)
    assert customer.sent() == [("hello", 2.0)]
    assert customer.stats["j@1|entered"] == 1
    assert customer.state.memberships == {}  # entered once, never again: no longer watched


def test_a_new_customer_whose_first_visit_makes_them_a_member_enters() -> None:
    customer = customer_in(journey("  segment: {enters: new}\n"))
    customer.visit(T0)
    assert customer.sent() == [("hello", 0.0)]


def test_a_customer_already_in_the_segment_at_first_sight_does_not_enter() -> None:
    plan = load_journey_text(journey("  segment: {enters: big_spender}\n", re_entry="always"),
                             FILE, VOCABULARY)
    runtime = JourneyRuntime(Catalog([plan]), customer_model=MODEL)
    state = CustomerState("ann")
    state.refuse_event("older-event", T0 - DAY_MS, 10**12)  # known before the journey
    state.profile.total_spend = 150.0
    effects = Effects()
    ctx = runtime.context(Aggregates())
    runtime.apply_event(state, validate_event({
        "event_id": "e1", "customer_id": "ann", "type": "rating", "ts": T0, "stars": 5}),
        ctx, effects)
    assert effects.stats["j@1|entered"] == 0
    assert state.memberships == {"big_spender": 1}
    assert CustomerState.from_bytes("ann", state.to_bytes()).memberships == {"big_spender": 1}


def test_a_known_customer_whom_the_first_event_checked_puts_in_the_segment_enters() -> None:
    plan = load_journey_text(journey("  segment: {enters: big_spender}\n"), FILE, VOCABULARY)
    runtime = JourneyRuntime(Catalog([plan]), customer_model=MODEL)
    state = CustomerState("ann")
    state.refuse_event("older-event", T0 - DAY_MS, 10**12)  # known before the journey
    state.profile.total_spend = 90.0
    effects = Effects()
    runtime.apply_event(state, validate_event({
        "event_id": "e1", "customer_id": "ann", "type": "visit", "ts": T0,
        "venue_id": "v1", "amount": 20}), runtime.context(Aggregates()), effects)
    assert effects.stats["j@1|entered"] == 1  # 90 before the visit, 110 after


def test_a_timer_that_finds_a_segment_never_checked_records_it_without_entering() -> None:
    steps = "  - id: later\n    at: day 60\n    actions: [{send: email, template: later}]\n"
    customer = customer_in(journey("  event: visit\n", steps=steps, exits=(
        "exit:\n  - when: \"journey.days_in > 50\"\n")))
    customer.visit(T0, amount=150)
    asleep = load_journey_text(journey("  segment: {enters: big_spender}\n").replace(
        "journey: j", "journey: k"), FILE, VOCABULARY)
    customer.runtime.catalog.add(asleep, current_candidate=True)  # loaded since
    assert customer.state.memberships == {}
    customer.advance(days=51)  # the trigger timer on day 50 + 1 ms finds it unchecked
    assert customer.state.memberships == {"big_spender": 1}
    assert customer.state.enrollments["j"].end_reason == "exit:condition_0"
    assert customer.stats["k@1|entered"] == 0


def test_a_customer_falls_asleep_on_the_clock() -> None:
    customer = customer_in(journey("  segment: {enters: sleeping}\n"))
    customer.visit(T0)
    assert customer.state.armed[TRIGGER_CLOCK] == T0 + 30 * DAY_MS + 1
    customer.advance(days=30)
    assert customer.sent() == []
    customer.advance(days=1)
    assert customer.sent() == [("hello", 30.0)]
    assert TRIGGER_CLOCK not in customer.state.armed


def test_a_visit_before_the_timer_moves_it() -> None:
    customer = customer_in(journey("  segment: {enters: sleeping}\n"))
    customer.visit(T0)
    customer.visit(T0 + 20 * DAY_MS)
    assert customer.state.armed[TRIGGER_CLOCK] == T0 + 50 * DAY_MS + 1
    customer.advance(days=40)
    assert customer.sent() == [("hello", 50.0)]


def test_leaving_a_segment_as_visits_drop_out_of_the_window() -> None:
    customer = customer_in(journey("  segment: {leaves: regular}\n", re_entry="always"))
    for day in (0, 5, 10):
        customer.visit(T0 + day * DAY_MS)
    assert customer.state.memberships == {"regular": 1}
    customer.advance(days=25)  # day 35: 0 falls out of the 30-day window on day 30
    assert customer.sent() == [("hello", 30.0)]
    assert customer.state.memberships == {"regular": 0}


def test_the_entry_condition_is_checked_at_the_change() -> None:
    customer = customer_in(journey("  segment: {enters: big_spender}\n"
                              "  when: \"customer.visit_count >= 3\"\n"))
    customer.visit(T0, amount=150)
    assert customer.sent() == []  # entered the segment with one visit: not this journey


def test_re_entry_rules_apply_to_segment_entries() -> None:
    customer = customer_in(journey("  segment: {enters: sleeping}\n", re_entry="40d"))
    customer.visit(T0)
    customer.advance(days=31)
    customer.visit(T0 + 35 * DAY_MS)  # awake again
    customer.advance(days=40)  # asleep again on day 65: too soon after day 30
    customer.visit(T0 + 80 * DAY_MS)
    customer.advance(days=40)  # asleep again on day 110
    assert customer.sent() == [("hello", 30.0), ("hello", 110.0)]


def test_nothing_is_watched_without_segment_journeys() -> None:
    customer = customer_in(journey("  event: visit\n"))
    customer.visit(T0)
    assert customer.state.memberships == {}
    assert TRIGGER_CLOCK not in customer.state.armed


# --------------------------------------------------------------------------- exits

STEPS_40 = ("  - id: hello\n    actions: [{send: email, template: hello}]\n"
            "  - id: later\n    at: day 40\n    actions: [{send: email, template: later}]\n")


def test_a_condition_exit_after_an_event() -> None:
    customer = customer_in(journey("  event: visit\n", steps=STEPS_40, exits=(
        "exit:\n  - when: \"customer.visits_30d >= 2\"\n    reason: came_back\n")))
    customer.visit(T0)
    customer.visit(T0 + 3 * DAY_MS)
    customer.advance(days=60)
    assert customer.sent() == [("hello", 0.0)]
    assert customer.stats["j@1|exit:came_back"] == 1
    assert customer.state.enrollments["j"].end_reason == "exit:came_back"


def test_a_condition_exit_on_the_clock() -> None:
    customer = customer_in(journey("  event: visit\n", steps=STEPS_40, exits=(
        "exit:\n  - when: \"customer.segment == 'sleeping'\"\n    reason: asleep\n")))
    customer.visit(T0)
    assert customer.state.armed[TRIGGER_CLOCK] == T0 + 30 * DAY_MS + 1
    customer.advance(days=60)
    assert customer.sent() == [("hello", 0.0)]
    enrollment = customer.state.enrollments["j"]
    assert (enrollment.end_reason, enrollment.ended_at) == ("exit:asleep",
                                                            T0 + 30 * DAY_MS + 1)
    assert customer.stats["j@1|exit:asleep"] == 1


def test_a_condition_exit_is_checked_before_a_step_runs() -> None:
    steps = ("  - id: hello\n    at: day 1\n    actions: [{tag: stop}]\n"
             "  - id: later\n    at: day 3\n    actions: [{send: email, template: later}]\n")
    customer = customer_in(journey("  event: visit\n", steps=steps, exits=(
        "exit:\n  - when: \"has_tag('stop')\"\n    reason: stopped\n")))
    customer.visit(T0)
    customer.advance(days=5)
    assert customer.sent() == []
    assert customer.state.enrollments["j"].ended_at == T0 + 3 * DAY_MS
    assert customer.stats["j@1|exit:stopped"] == 1


def test_a_condition_true_at_entry_waits_for_the_next_check() -> None:
    customer = customer_in(journey("  event: visit\n", steps=STEPS_40, exits=(
        "exit:\n  - when: \"customer.visit_count >= 1\"\n    reason: visited\n")))
    customer.visit(T0)
    assert customer.sent() == [("hello", 0.0)]  # not checked at the moment of entry
    customer.event("rating", T0 + DAY_MS, stars=4)
    assert customer.stats["j@1|exit:visited"] == 1


def test_old_states_without_memberships_still_load() -> None:
    state = CustomerState("ann")
    state.profile.visit_count = 2
    raw = state.to_bytes()
    assert CustomerState.from_bytes("ann", raw).memberships == {}


def test_the_json_schema_knows_segment_entries_and_condition_exits() -> None:
    validator = jsonschema.Draft202012Validator(journey_json_schema())
    good = yaml.safe_load(journey("  segment: {enters: vip}\n", exits=(
        "exit:\n  - when: \"customer.visits_30d >= 2\"\n    reason: back\n"
        "  - event: visit\n")))
    assert list(validator.iter_errors(good)) == []
    entries: list[dict[str, dict[str, str]]] = [
        {"segment": {"enters": "vip", "leaves": "new"}}, {"segment": {}},
        {"segment": {"enter": "vip"}}]
    for entry in entries:
        assert not validator.is_valid({**good, "entry": entry})
    assert not validator.is_valid({**good, "exit": [{"reason": "back"}]})


def test_explain_tells_whether_the_next_check_sees_the_change() -> None:
    customer = customer_in(journey("  segment: {enters: sleeping}\n"))
    customer.visit(T0)
    plan = customer.runtime.catalog.current["j"]
    explainer = Explainer(customer.runtime, NO_POLICIES)
    ctx = customer.runtime.context(customer.aggregates)
    before = customer.state.to_bytes()
    awake = explainer.explain(customer.state, plan, ctx, T0 + 10 * DAY_MS)
    assert awake.verdict == "would_not_enter"
    assert awake.checks[0].name == "segment change (enters sleeping)"
    assert "not in segment sleeping, as at the last check" in awake.checks[0].detail
    asleep = explainer.explain(customer.state, plan, ctx, T0 + 31 * DAY_MS)
    assert asleep.verdict == "would_enter"
    assert [step.step_id for step in asleep.steps] == ["hello"]
    assert customer.state.to_bytes() == before


def test_the_documented_examples_name_shipped_segments() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "journeys.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
              if b.startswith("journey:") and ("segment:" in b or "\n  - when:" in b)]
    assert len(blocks) == 2
    for block in blocks:
        load_journey_text(block, "docs/journeys.md", segments_vocabulary())


def test_explain_shows_a_condition_exit_as_the_ending() -> None:
    customer = customer_in(journey("  event: visit\n", steps=STEPS_40, exits=(
        "exit:\n  - when: \"customer.segment == 'sleeping'\"\n    reason: asleep\n")))
    customer.visit(T0)
    explained = Explainer(customer.runtime, NO_POLICIES).explain(
        customer.state, customer.runtime.catalog.current["j"],
        customer.runtime.context(customer.aggregates), T0 + DAY_MS)
    assert explained.verdict == "in_journey"
    assert explained.ending == "exit:asleep"
    assert explained.steps == ()  # the follow-up on day 40 never runs


def test_a_segment_entry_written_as_text_says_how_to_write_it() -> None:
    assert problems(journey("  segment: vip\n")) == [
        "j.yaml:4:12: segment needs 'enters' or 'leaves': write segment: {enters: vip} or "
        "segment: {leaves: vip} (at entry.segment)"]


def test_an_exit_rule_needs_an_event_or_a_condition() -> None:
    assert problems(journey("  event: visit\n", exits="exit:\n  - reason: back\n")) == [
        "j.yaml:7:5: exit rule 1 needs 'event' (end on an event) or 'when' (end when a "
        "condition becomes true) (at exit[0])"]
