"""Policies files and the gate that applies them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.core.policy_gate import PolicyGate
from engine.core.state import CustomerState
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.loader import load_journey_text
from journeys_dsl.policies import load_policies, load_policies_text


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_the_example_policies_load() -> None:
    policies = load_policies("examples/policies.yaml")
    assert policies.cap is not None and policies.cap.max_messages == 2
    assert policies.quiet_hours == (21 * 60, 9 * 60)
    assert policies.consent == "opt_in"


@pytest.mark.parametrize(("text", "line", "col", "fragment"), [
    ("frequency_cap: {max: 0, per: 7d}\n", 1, 22, "whole number of 1 or more"),
    ("frequency_cap: {max: 2}\n", 1, 16, "missing required key 'per'"),
    ("frequency_cap: {max: 2, per: 7d, when_capped: later}\n", 1, 47,
     "unknown when_capped rule 'later'"),
    ("quiet_hours: {from: \"25:00\", to: \"09:00\"}\n", 1, 21, "expected a time like 10:00"),
    ("send_windows:\n  fax: {from: \"10:00\", to: \"20:00\"}\n", 2, 3, "unknown channel 'fax'"),
    ("consent: maybe\n", 1, 10, "unknown consent mode 'maybe'"),
    ("consent: opt_in\nvouchers_when_unreachable: keep\n", 2, 28,
     "unknown vouchers_when_unreachable rule 'keep'"),
    ("quiet_hour: {from: \"21:00\", to: \"09:00\"}\n", 1, 1, "did you mean 'quiet_hours'?"),
])
def test_bad_policies_are_refused_with_positions(text: str, line: int, col: int,
                                                 fragment: str) -> None:
    with pytest.raises(JourneyValidationError) as caught:
        load_policies_text(text, "p.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"p.yaml:{line}:{col}:") and fragment in p for p in problems), \
        problems


def customer(tz: str | None = None) -> CustomerState:
    state = CustomerState("ann")
    state.profile.timezone = tz
    state.profile.email, state.profile.phone = "ann@example.com", "+4930123456"
    return state


def test_quiet_hours_wrap_midnight_in_the_customer_zone() -> None:
    gate = PolicyGate(load_policies_text('quiet_hours: {from: "21:00", to: "09:00"}\n', "p"))
    tokyo = customer("Asia/Tokyo")
    noon_tokyo = ms("2025-03-03T03:00:00")
    assert gate.send_time(noon_tokyo, ["email"], tokyo) == noon_tokyo
    late_tokyo = ms("2025-03-03T13:30:00")  # 22:30 in Tokyo
    assert gate.send_time(late_tokyo, ["email"], tokyo) == ms("2025-03-04T00:00:00")
    early = ms("2025-03-03T02:00:00")  # 02:00 UTC
    assert gate.send_time(early, ["email"], customer()) == ms("2025-03-03T09:00:00")


def test_caps_skip_or_delay() -> None:
    text = "frequency_cap: {max: 2, per: 7d, channels: {sms: 1}, when_capped: delay}\n"
    gate = PolicyGate(load_policies_text(text, "p"))
    ann = customer()
    start = ms("2025-03-03T12:00:00")
    assert gate.refusal(ann, "email", start) is None
    gate.record(ann, "email", start)
    gate.record(ann, "sms", start + 1000)
    assert gate.refusal(ann, "sms", start + 2000) == "capped"  # one SMS a week
    assert gate.refusal(ann, "email", start + 2000) == "capped"  # two messages a week
    week = 7 * 86_400_000
    assert gate.send_time(start + 2000, ["email"], ann) == start + week + 1
    assert gate.refusal(ann, "email", start + week + 1) is None


def test_consent_modes() -> None:
    ann = customer()
    opt_out = PolicyGate(load_policies(None))
    opt_in = PolicyGate(load_policies_text("consent: opt_in\n", "p"))
    assert opt_out.refusal(ann, "email", 0) is None
    assert opt_in.refusal(ann, "email", 0) == "no_consent"
    ann.profile.consents = {"email": True, "sms": False}
    assert opt_in.refusal(ann, "email", 0) is None
    assert opt_out.refusal(ann, "sms", 0) == "no_consent"
    ann.profile.unsubscribed = ["email"]
    assert opt_in.refusal(ann, "email", 0) == "no_consent"


def test_unreachable_messages_and_their_vouchers() -> None:
    issue = PolicyGate(load_policies(None))
    withhold = PolicyGate(load_policies_text("vouchers_when_unreachable: withhold\n", "p"))
    assert issue.policies.vouchers_when_unreachable == "issue"  # the documented default
    steps = load_journey_text(GIFT_BY_SMS, "gift.yaml").steps
    gift, plain = steps[0].actions, steps[1].actions
    ann = CustomerState("ann")
    assert issue.refusal(ann, "sms", 0) == "unreachable"
    assert issue.refusal(ann, "push", 0) is None  # the push gateway finds the customer by id
    assert issue.unreached_vouchers(ann, gift) == "voucher_unreached"
    assert withhold.unreached_vouchers(ann, gift) == "voucher_withheld"
    assert withhold.unreached_vouchers(ann, plain) is None  # nothing to withhold
    ann.profile.phone = "+4930123456"
    assert issue.refusal(ann, "sms", 0) is None
    assert withhold.unreached_vouchers(ann, gift) is None
    ann.profile.consents = {"sms": False}
    assert withhold.refusal(ann, "sms", 0) == "no_consent"
    assert withhold.unreached_vouchers(ann, gift) == "voucher_withheld"


GIFT_BY_SMS = """\
journey: gift
version: 1
entry:
  event: visit
offers:
  dessert: {description: A dessert, valid_for: 7d}
steps:
  - id: gift
    actions:
      - issue: dessert
      - send: sms
        template: gift
  - id: hello
    actions:
      - send: sms
        template: hello
"""
