"""The explanation of a customer and a journey, on scenarios whose answer is known: the
runtime builds the customer's state from events, and the explanation must name the rule
that stops the customer, with the values it read."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.console.conditions import check_condition, split_top_level
from engine.console.explain import Explainer, JourneyExplanation
from engine.core.aggregates import Aggregates
from engine.core.catalog import Catalog
from engine.core.events import Event, validate_event
from engine.core.runtime import Effects, JourneyRuntime, stable_fraction
from engine.core.scope import build_scope
from engine.core.state import CustomerState
from journeys_dsl.expressions import parse_expression
from journeys_dsl.loader import load_journey_text
from journeys_dsl.plan import JourneyPlan
from journeys_dsl.policies import NO_POLICIES, Policies, load_policies_text

PARIS = ZoneInfo("Europe/Paris")
_ids = iter(range(10**9))


def at(day: int, hour: int, minute: int = 0) -> int:
    """Epoch ms of 2025-03-<day> hour:minute in Paris."""
    return int(datetime(2025, 3, day, hour, minute, tzinfo=PARIS).timestamp() * 1000)


THANKS = """\
journey: thanks
version: 1
entry:
  event: rating
  when: "event.stars == 5 and customer.visit_count == 1"
{holdout}
steps:
  - id: thank
    actions:
      - send: email
        template: thanks
"""

POLICIES = """\
frequency_cap:
  max: 1
  per: 7d
  when_capped: skip
quiet_hours: {from: "21:00", to: "09:00"}
"""


def journey(holdout: str = "") -> JourneyPlan:
    return load_journey_text(THANKS.format(holdout=holdout), "thanks.yaml")


class Scenario:
    """A customer whose state the runtime builds from events."""

    def __init__(self, plan: JourneyPlan, policies: Policies = NO_POLICIES,
                 customer_id: str = "ann") -> None:
        self.plan = plan
        self.policies = policies
        self.runtime = JourneyRuntime(Catalog([plan]), policies=policies)
        self.ctx = self.runtime.context(Aggregates())
        self.state = CustomerState(customer_id)
        self.state.profile.timezone = "Europe/Paris"
        self.state.profile.email = f"{customer_id}@example.com"
        self.last: Event | None = None

    def event(self, kind: str, ts: int, **fields: Any) -> Event:
        raw = {"event_id": f"e{next(_ids)}", "customer_id": self.state.customer_id,
               "type": kind, "ts": ts, **fields}
        event = validate_event(raw)
        self.runtime.apply_event(self.state, event, self.ctx, Effects())
        self.last = event
        return event

    def visit(self, ts: int) -> None:
        self.event("visit", ts, venue_id="v1", amount=30.0)

    def explain(self, now: int, sample: Event | None = None) -> JourneyExplanation:
        before = self.state.to_bytes()
        result = Explainer(self.runtime, self.policies).explain(
            self.state, self.plan, self.ctx, now, sample)
        assert self.state.to_bytes() == before, "explaining must not change the state"
        return result


def first_failing(explanation: JourneyExplanation) -> str:
    return next(check.name for check in explanation.checks if not check.passed)


def test_a_customer_who_meets_everything_would_enter_and_get_the_message() -> None:
    scenario = Scenario(journey())
    scenario.visit(at(3, 12))
    rating = scenario.event("rating", at(3, 13), stars=5)
    # the rating entered the journey already: a second entry is refused while in it
    assert scenario.state.enrollments["thanks"].ended_at is not None  # one step: ended
    scenario.state.enrollments.clear()
    result = scenario.explain(at(3, 14), rating)
    assert result.verdict == "would_enter"
    assert result.summary == "Would enter now."
    assert [(s.step_id, s.result) for s in result.steps] == [("thank", "ran")]
    assert [(m.channel, m.result) for m in result.steps[0].messages] == [("email", "sent")]
    assert result.ending == "completed"


def test_a_customer_with_no_address_for_the_channel_enters_but_is_unreachable() -> None:
    scenario = Scenario(journey())
    scenario.state.profile.email = None
    scenario.visit(at(3, 12))
    rating = scenario.event("rating", at(3, 13), stars=5)
    scenario.state.enrollments.clear()
    result = scenario.explain(at(3, 14), rating)
    assert result.verdict == "would_enter"
    [step] = result.steps
    assert [(m.channel, m.result, m.detail) for m in step.messages] == [
        ("email", "unreachable", "no email address: the profile has no email")]


def test_a_failing_condition_names_the_part_and_the_value_it_read() -> None:
    scenario = Scenario(journey())
    scenario.visit(at(3, 12))
    scenario.visit(at(4, 12))
    rating = scenario.event("rating", at(4, 13), stars=5)
    result = scenario.explain(at(4, 14), rating)
    assert result.verdict == "would_not_enter"
    assert first_failing(result) == "entry condition"
    condition = next(c.condition for c in result.checks if c.name == "entry condition")
    assert condition is not None and condition.joiner == "and"
    failing = condition.failing
    assert [part.source for part in failing] == ["customer.visit_count == 1"]
    assert [(v.name, v.value) for v in failing[0].values] == [("customer.visit_count", 2)]
    passing = [part for part in condition.parts if part.passed]
    assert [(v.name, v.value) for v in passing[0].values] == [("event.stars", 5)]
    assert result.steps == ()


def test_a_customer_at_the_frequency_cap_enters_but_the_message_is_capped() -> None:
    policies = load_policies_text(POLICIES, "policies.yaml")
    scenario = Scenario(journey(), policies)
    scenario.visit(at(3, 12))
    scenario.state.sent_log = [[at(2, 12), "sms"]]  # another journey's message yesterday
    rating = scenario.event("rating", at(3, 13), stars=5)
    scenario.state.enrollments.clear()
    result = scenario.explain(at(3, 14), rating)
    assert result.verdict == "would_enter"
    [step] = result.steps
    [message] = step.messages
    assert (message.channel, message.result) == ("email", "capped")
    assert message.detail == "frequency cap: 1 of at most 1 messages in the last 7d"
    assert "no message would go out (capped)" in result.summary


def test_quiet_hours_move_the_step_to_the_morning_and_say_why() -> None:
    policies = load_policies_text(POLICIES, "policies.yaml")
    scenario = Scenario(journey(), policies)
    scenario.visit(at(3, 20))
    rating = scenario.event("rating", at(3, 21, 30), stars=5)
    scenario.state.enrollments.clear()
    scenario.state.sent_log.clear()
    result = scenario.explain(at(3, 22, 30), rating)
    assert result.verdict == "would_enter"
    [step] = result.steps
    assert step.delayed == "delayed by quiet hours 21:00 to 09:00 in Europe/Paris"
    assert step.at == at(4, 9)
    assert [(m.result, m.detail) for m in step.messages] == [
        ("sent", "send at 2025-03-04 09:00 Europe/Paris")]


def test_a_customer_drawn_into_the_holdout_enters_without_messages() -> None:
    customer = next(f"c{n}" for n in range(1000) if stable_fraction(f"c{n}", "thanks") < 0.5)
    scenario = Scenario(journey("holdout: 50%"), customer_id=customer)
    scenario.visit(at(3, 12))
    rating = scenario.event("rating", at(3, 13), stars=5)
    scenario.state.enrollments.clear()
    result = scenario.explain(at(3, 14), rating)
    assert result.verdict == "holdout"
    holdout = next(check for check in result.checks if check.name == "holdout")
    draw = stable_fraction(customer, "thanks")
    assert not holdout.passed and f"draw {draw:.4f} is under the holdout share 0.50" \
        in holdout.detail
    assert [(s.step_id, s.result, s.messages) for s in result.steps] == [
        ("thank", "holdout", ())]


def test_no_consent_under_opt_in_names_the_missing_consent() -> None:
    policies = load_policies_text("consent: opt_in\n", "policies.yaml")
    scenario = Scenario(journey(), policies)
    scenario.visit(at(3, 12))
    rating = scenario.event("rating", at(3, 13), stars=5)
    scenario.state.enrollments.clear()
    [step] = scenario.explain(at(3, 14), rating).steps
    assert [(m.result, m.detail) for m in step.messages] == [
        ("no_consent", "consent policy opt_in and consents.email is missing")]


def test_re_entry_and_an_active_enrollment_stop_the_entry() -> None:
    scenario = Scenario(load_journey_text(THANKS.format(holdout="") + """\
  - id: later
    after: 3d
    actions:
      - send: email
        template: later
""", "thanks.yaml"))
    scenario.visit(at(3, 12))
    rating = scenario.event("rating", at(3, 13), stars=5)
    in_journey = scenario.explain(at(3, 14), rating)
    assert in_journey.verdict == "in_journey"
    assert first_failing(in_journey) == "already in the journey"
    assert [(s.step_id, s.at) for s in in_journey.steps] == [("later", at(6, 13))]
    scenario.runtime.fire_due(scenario.state, at(7, 0), scenario.ctx, Effects())
    ended = scenario.explain(at(8, 12), rating)
    assert ended.verdict == "would_not_enter"
    assert first_failing(ended) == "re-entry"  # the journey allows one entry by default
    assert ended.enrollment is not None and ended.enrollment.end_reason == "completed"


def test_without_the_entry_event_the_event_fields_read_as_missing() -> None:
    scenario = Scenario(journey())
    scenario.visit(at(3, 12))
    result = scenario.explain(at(3, 14))
    assert first_failing(result) == "a rating event"
    condition = next(c.condition for c in result.checks if c.name == "entry condition")
    assert condition is not None
    assert ("event.stars", None) in [(v.name, v.value) for v in condition.values]


def test_conditions_split_at_the_loosest_top_level_keyword() -> None:
    assert split_top_level("a == 'x and y' and (b or c) and d", "and") == [
        "a == 'x and y'", "(b or c)", "d"]
    assert split_top_level("brand == 1", "and") == ["brand == 1"]
    scope = {"customer": {"visit_count": 3, "name": "Ann"}}
    check = check_condition(parse_expression(
        "customer.visit_count > 5 or customer.name == 'Ann' and customer.visit_count == 3"),
        scope)
    assert check.passed and check.joiner == "or"
    assert [part.passed for part in check.parts] == [False, True]
    whole = check_condition(parse_expression("(customer.visit_count > 1)"), scope)
    assert whole.passed and whole.parts == ()


def test_values_are_read_in_the_scope_the_engine_builds() -> None:
    scenario = Scenario(journey())
    scenario.visit(at(3, 12))
    scope = build_scope(scenario.state, at(3, 13), scenario.ctx)
    check = check_condition(parse_expression("customer.visit_count >= 1"), scope)
    assert check.passed and [(v.name, v.value) for v in check.values] == [
        ("customer.visit_count", 1)]


BROADCAST = """\
journey: spring
version: 1
entry:
  broadcast:
    at: "2025-03-10 10:00"
    audience: "customer.visit_count >= 1"
steps:
  - id: news
    actions:
      - send: email
        template: spring
"""


def test_a_broadcast_entry_names_its_timer_and_checks_the_audience_then() -> None:
    scenario = Scenario(load_journey_text(BROADCAST, "spring.yaml"))
    scenario.visit(at(3, 12))
    waiting = scenario.explain(at(4, 12))
    assert first_failing(waiting) == "entry timer"
    timer = next(c for c in waiting.checks if c.name == "entry timer")
    assert timer.detail.startswith("not armed: a broadcast at 2025-03-10 10:00 local time;")
    scenario.state.armed["spring"] = at(10, 10)  # as the shard's walk arms it
    armed = scenario.explain(at(4, 12))
    assert armed.verdict == "would_enter"
    timer = next(c for c in armed.checks if c.name == "entry timer")
    assert timer.passed and "armed for a broadcast at 2025-03-10 10:00 local time" in timer.detail
    assert [(s.step_id, s.result) for s in armed.steps] == [("news", "ran")]
