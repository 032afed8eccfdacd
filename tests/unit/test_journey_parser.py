"""Parsing journey YAML into located nodes and compiling it into frozen plans."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import MappingProxyType

import pytest

from journeys_dsl import plan
from journeys_dsl.loader import load_journey_file, load_journey_text
from journeys_dsl.yaml_nodes import MappingNode, ScalarNode, SequenceNode, load_nodes

# --------------------------------------------------------------------------- located nodes


def test_nodes_keep_positions_and_types() -> None:
    text = "a: 1\nb:\n  - x\n  - 'y'\nc: 10:00\n"
    root, problems = load_nodes(text, "f.yaml")
    assert problems == []
    assert isinstance(root, MappingNode)
    assert root.keys() == ["a", "b", "c"]
    a = root.get("a")
    assert a is not None and isinstance(a.value, ScalarNode)
    assert (a.key.line, a.key.col, a.value.line, a.value.col) == (1, 1, 1, 4)
    assert a.value.value == 1 and a.value.text == "1"
    b = root.get("b")
    assert b is not None and isinstance(b.value, SequenceNode)
    second = b.value.items[1]
    assert isinstance(second, ScalarNode)
    assert (second.line, second.col, second.style, second.text) == (4, 5, "'", "y")
    c = root.get("c")
    assert c is not None and isinstance(c.value, ScalarNode)
    # YAML 1.1 reads an unquoted 10:00 as a number; the text as written is kept
    assert c.value.text == "10:00"


def test_duplicate_keys_are_kept_aside() -> None:
    root, _ = load_nodes("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert isinstance(root, MappingNode)
    assert len(root.duplicates) == 1
    duplicate = root.duplicates[0]
    assert (duplicate.entry.key.line, duplicate.first.line) == (3, 1)
    first = root.get("a")
    assert first is not None and isinstance(first.value, ScalarNode)
    assert first.value.value == 1


def test_syntax_error_becomes_a_problem() -> None:
    root, problems = load_nodes("a: [1, 2\n", "f.yaml")
    assert root is None
    assert len(problems) == 1
    assert problems[0].message.startswith("YAML syntax error")


def test_second_document_is_a_problem() -> None:
    root, problems = load_nodes("a: 1\n---\nb: 2\n", "f.yaml")
    assert root is None
    assert (problems[0].line, problems[0].col) == (2, 1)
    assert "one document" in problems[0].message


def test_recursive_alias_does_not_hang() -> None:
    root, problems = load_nodes("a: &x [*x]\n", "f.yaml")
    assert isinstance(root, MappingNode)
    assert any("refers to itself" in p.message for p in problems)


@pytest.mark.parametrize(("line", "offset", "expected"), [
    ("k: abc def", 4, (1, 8)),            # plain
    ('k: "abc def"', 4, (1, 9)),          # double quoted: +1 for the quote
    ("k: 'it''s x'", 5, (1, 11)),         # '' counts as one character of the value
    ('k: "a\\tb c"', 3, (1, 9)),          # an escape takes two characters in the file
])
def test_scalar_positions(line: str, offset: int, expected: tuple[int, int]) -> None:
    root, _ = load_nodes(line + "\n", "f.yaml")
    assert isinstance(root, MappingNode)
    entry = root.get("k")
    assert entry is not None and isinstance(entry.value, ScalarNode)
    assert entry.value.position(offset) == expected


def test_position_in_folded_plain_scalar() -> None:
    root, _ = load_nodes("k: abc\n   def ghi\n", "f.yaml")
    assert isinstance(root, MappingNode)
    entry = root.get("k")
    assert entry is not None and isinstance(entry.value, ScalarNode)
    assert entry.value.text == "abc def ghi"
    assert entry.value.position(8) == (2, 8)


def test_block_scalar_position_is_its_start() -> None:
    root, _ = load_nodes("k: |\n  abc def\n", "f.yaml")
    assert isinstance(root, MappingNode)
    entry = root.get("k")
    assert entry is not None and isinstance(entry.value, ScalarNode)
    assert entry.value.position(4) == (1, 4)


# --------------------------------------------------------------------------- compiled plans

MINIMAL = """\
journey: minimal
version: 3
entry:
  event: visit
steps:
  - id: hello
"""


def test_minimal_journey_defaults() -> None:
    journey = load_journey_text(MINIMAL, "minimal.yaml")
    assert journey.key == "minimal@3"
    assert journey.name == "minimal"
    assert journey.description == ""
    assert journey.entry == plan.EventEntry("visit", None)
    assert journey.re_entry == plan.ReEntry("never")
    assert journey.holdout == 0.0
    assert journey.goal is None and journey.exits == ()
    assert journey.steps == (plan.StepPlan("hello", 0, plan.Immediate(), None, (), (),
                                           plan.END),)
    assert journey.source_file == "minimal.yaml"
    assert journey.source_text == MINIMAL
    assert journey.source_digest == hashlib.sha256(MINIMAL.encode()).hexdigest()
    assert isinstance(journey.offers, MappingProxyType)
    assert isinstance(journey.step_index, MappingProxyType)
    assert dict(journey.step_index) == {"hello": 0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        journey.version = 4  # type: ignore[misc]


FULL = """\
journey: full
version: 1
name: Everything
description: Every construct once.
entry:
  event: rating
  when: "event.stars >= 4"
re_entry: 90d
holdout: 0.25
goal:
  event: voucher_redeemed
  when: "event.voucher_id == offer.gift.code"
  within: 30d
exit:
  - event: visit
    reason: came_back
  - event: message
    when: event.status == "unsubscribed"
offers:
  gift:
    description: A gift
    item: cake
    category: desserts
    discount: 10 EUR
    dayparts: [lunch, dinner]
    valid_for: 2w
steps:
  - id: first
    at: "day 1 11:00"
    actions:
      - issue: gift
      - send: whatsapp
        template: gift_sent
        vars: {code: offer.gift.code, name: "customer.first_name"}
      - points: 50
      - points: 10
        reason: bonus
      - tag: gifted
      - untag: prospect
  - id: wait
    wait_for:
      event: voucher_redeemed
      when: event.voucher_id == offer.gift.code
      timeout: 7d
      on_timeout: nudge
    next: thanks
  - id: nudge
    after: 1d12h
    if: not offer.gift.redeemed
    branch:
      - if: customer.visits_30d > 2
        goto: thanks
      - if: journey.days_in > 20
        goto: end
    next: last
  - id: thanks
    at: 36h
    next: end
  - id: last
    branch:
      - if: customer.points > 100
        goto: thanks
      - else: end
"""


@pytest.fixture(scope="module")
def full() -> plan.JourneyPlan:
    return load_journey_text(FULL, "full.yaml")


def test_header_entry_and_rules(full: plan.JourneyPlan) -> None:
    assert (full.name, full.description) == ("Everything", "Every construct once.")
    assert isinstance(full.entry, plan.EventEntry)
    assert full.entry.event_type == "rating"
    assert full.entry.condition is not None
    assert full.entry.condition.test({"event": {"stars": 5}})
    assert not full.entry.condition.test({"event": {"stars": 3}})
    assert full.re_entry == plan.ReEntry("after", 90 * 86400)
    assert full.holdout == 0.25
    assert full.goal is not None
    assert (full.goal.event_type, full.goal.within_s) == ("voucher_redeemed", 30 * 86400)
    assert [(e.event_type, e.reason) for e in full.exits] == [
        ("visit", "came_back"), ("message", "message_1")]


def test_offers(full: plan.JourneyPlan) -> None:
    assert full.offers["gift"] == plan.OfferPlan(
        "gift", "A gift", "cake", "desserts", "10 EUR", ("lunch", "dinner"), 14 * 86400)


def test_actions(full: plan.JourneyPlan) -> None:
    actions = full.steps[0].actions
    assert actions[0] == plan.IssueAction("gift")
    send = actions[1]
    assert isinstance(send, plan.SendAction)
    assert (send.channel, send.template) == ("whatsapp", "gift_sent")
    assert [name for name, _ in send.variables] == ["code", "name"]
    assert send.variables[1][1].evaluate({"customer": {"first_name": "Ana"}}) == "Ana"
    assert actions[2:] == (
        plan.PointsAction(50, "full"),   # the reason defaults to the journey id
        plan.PointsAction(10, "bonus"),
        plan.TagAction("gifted", remove=False),
        plan.TagAction("prospect", remove=True),
    )


def test_timings(full: plan.JourneyPlan) -> None:
    assert full.steps[0].timing == plan.AtTime(86400, (11, 0))
    wait = full.steps[1].timing
    assert isinstance(wait, plan.WaitFor)
    assert (wait.event_type, wait.timeout_s, wait.on_timeout) == ("voucher_redeemed",
                                                                 7 * 86400, 2)
    assert wait.condition is not None
    assert full.steps[2].timing == plan.After(36 * 3600)
    assert full.steps[3].timing == plan.AtTime(36 * 3600, None)
    assert full.steps[4].timing == plan.Immediate()


def test_flow_is_resolved_to_indices(full: plan.JourneyPlan) -> None:
    assert [s.next_index for s in full.steps] == [1, 3, 4, plan.END, plan.END]
    assert [b.target for b in full.steps[2].branches] == [3, plan.END]
    assert full.steps[2].guard is not None
    assert [b.target for b in full.steps[4].branches] == [3, plan.END]
    assert full.steps[4].branches[1].condition is None
    assert dict(full.step_index) == {"first": 0, "wait": 1, "nudge": 2, "thanks": 3,
                                     "last": 4}
    assert [s.index for s in full.steps] == [0, 1, 2, 3, 4]


def test_wait_for_timeout_defaults_to_end() -> None:
    text = MINIMAL + "    wait_for: {event: rating, timeout: 3d}\n"
    timing = load_journey_text(text, "w.yaml").steps[0].timing
    assert isinstance(timing, plan.WaitFor) and timing.on_timeout == plan.END


@pytest.mark.parametrize(("entry", "expected"), [
    ("  inactive_for: 45d\n  when: customer.visits_90d >= 4\n",
     lambda e: isinstance(e, plan.InactivityEntry) and e.after_s == 45 * 86400
     and e.condition is not None),
    ("  date: birthday\n",
     lambda e: e == plan.DateEntry("birthday", 0, (10, 0), None)),
    ("  date: first_visit_anniversary\n  offset: -7d\n  at: '9:30'\n",
     lambda e: e == plan.DateEntry("first_visit_anniversary", -7 * 86400, (9, 30), None)),
    ("  date: birthday\n  at: 10:00\n",  # unquoted: read as written, not as a number
     lambda e: e == plan.DateEntry("birthday", 0, (10, 0), None)),
    ("  p_alive_below: 0.3\n",
     lambda e: e == plan.PAliveEntry(0.3, None)),
])
def test_entry_kinds(entry: str, expected: object) -> None:
    text = f"journey: e\nversion: 1\nentry:\n{entry}steps:\n  - id: a\n"
    compiled = load_journey_text(text, "e.yaml").entry
    assert callable(expected) and expected(compiled), compiled


@pytest.mark.parametrize(("value", "expected"), [
    ("never", plan.ReEntry("never")),
    ("always", plan.ReEntry("always")),
    ("2w", plan.ReEntry("after", 14 * 86400)),
])
def test_re_entry(value: str, expected: plan.ReEntry) -> None:
    text = MINIMAL + f"re_entry: {value}\n"
    assert load_journey_text(text, "r.yaml").re_entry == expected


def test_holdout_percent() -> None:
    assert load_journey_text(MINIMAL + "holdout: 10%\n", "h.yaml").holdout == pytest.approx(0.1)


def test_load_journey_file(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    journey = load_journey_file(path)
    assert journey.source_file == str(path)
    assert journey.source_text == MINIMAL
    with pytest.raises(FileNotFoundError):
        load_journey_file(tmp_path / "missing.yaml")
