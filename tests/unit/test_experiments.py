"""Split steps (A/B experiments): their grammar and checks, the draw, its counters, and the
reports' per-variant conversion and reading.

Expected positions in validation messages are counted by hand from each YAML text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import jsonschema
import pytest
import yaml

from engine.console.explain import Explainer
from engine.console.text import format_explanations
from engine.core.aggregates import Aggregates
from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.experiments import pick_variant
from engine.core.runtime import Effects, JourneyRuntime, stable_fraction
from engine.core.state import CustomerState
from engine.core.state_codec import pack
from engine.reporting.html import render_html
from engine.reporting.model import RunFacts
from engine.reporting.stats import build_report, edge_conditions
from engine.reporting.terminal import format_experiments, format_report
from journeys_dsl.errors import JourneyValidationError, Problem
from journeys_dsl.loader import check_journeys, load_journey_text
from journeys_dsl.plan import JourneyPlan, Variant
from journeys_dsl.policies import NO_POLICIES
from journeys_dsl.schema import journey_json_schema

FILE = "x.yaml"
EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "journeys" / "experiments"
           / "newcomer_offer_test.yaml")
T0 = 1_741_000_000_000
DAY = 86_400_000

SPLIT = """\
journey: offer_test
version: 1
entry:
  event: visit
holdout: 10%
goal:
  event: visit
  within: 30d
steps:
  - id: pick
    split:
      - variant: a
        weight: 1
        goto: send_a
      - variant: b
        weight: 3
        goto: send_b
  - id: send_a
    actions:
      - send: email
        template: a
    next: end
  - id: send_b
    actions:
      - send: email
        template: b
"""

# Lines: 1 journey, 2 version, 3 entry, 4 event, 5 steps, 6 first step.
HEAD = """\
journey: j
version: 1
entry:
  event: visit
steps:
"""
TAIL = """\
  - id: one
    actions: [{tag: one}]
    next: end
  - id: two
    actions: [{tag: two}]
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE)
    return list(caught.value.problems)


def assert_problem(text: str, line: int, col: int, fragment: str, path: str) -> Problem:
    """Exactly one problem at FILE:line:col whose message contains `fragment`."""
    found = problems_of(text)
    matching = [p for p in found if fragment in p.message]
    assert len(matching) == 1, "\n".join(str(p) for p in found)
    problem = matching[0]
    assert str(problem).startswith(f"{FILE}:{line}:{col}: "), str(problem)
    assert problem.path == path
    return problem


def split_step(arms: str, extra: str = "") -> str:
    return HEAD + "  - id: pick\n" + extra + "    split:\n" + arms + TAIL


ARMS = """\
      - variant: a
        weight: 50%
        goto: one
      - variant: b
        weight: 50%
        goto: two
"""


# --------------------------------------------------------------------------- grammar


def test_a_split_compiles_to_shares_and_targets() -> None:
    plan = load_journey_text(SPLIT, FILE)
    step = plan.steps[0]
    assert step.split == (Variant("a", 0.25, 1), Variant("b", 0.75, 2))
    assert plan.variant_steps == {"a": "pick", "b": "pick"}
    assert edge_conditions(plan)[("pick", "send_b")] == "variant b (75%)"


def test_the_example_experiment_loads_and_matches_the_schema() -> None:
    plan = load_journey_text(EXAMPLE.read_text(), str(EXAMPLE))
    assert [v.name for v in plan.steps[0].split] == ["dessert", "ten_off"]
    validator = jsonschema.Draft202012Validator(journey_json_schema())
    assert [e.message for e in validator.iter_errors(yaml.safe_load(EXAMPLE.read_text()))] == []


@pytest.mark.parametrize("key", ["next", "branch", "wait_for"])
def test_the_schema_refuses_a_split_with_another_way_on(key: str) -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["steps"][0][key] = "end" if key == "next" else {}
    validator = jsonschema.Draft202012Validator(journey_json_schema())
    assert not validator.is_valid(document)


def test_a_duplicate_variant_name_is_refused_where_it_is_written() -> None:
    arms = ARMS.replace("variant: b", "variant: a")
    assert_problem(split_step(arms), 11, 18, "duplicate variant 'a' (also in step 'pick' at "
                   "line 8); variant names are unique in a journey", "steps[0].split[1].variant")


def test_variant_names_are_unique_across_splits() -> None:
    text = HEAD + "  - id: pick\n    split:\n" + ARMS + """\
  - id: one
    split:
      - variant: b
        weight: 1
        goto: two
      - variant: c
        weight: 1
        goto: end
  - id: two
    actions: [{tag: two}]
"""
    assert_problem(text, 16, 18, "duplicate variant 'b'", "steps[1].split[0].variant")


@pytest.mark.parametrize(("weight", "col"), [("0", 17), ("-1", 17), ("lots", 17),
                                             ("0%", 17), ("true", 17)])
def test_a_weight_must_be_a_number_above_zero(weight: str, col: int) -> None:
    arms = ARMS.replace("weight: 50%", f"weight: {weight}", 1)
    problem = assert_problem(split_step(arms), 9, col, "weight must be a number above 0, "
                             "such as 1 or 50%", "steps[0].split[0].weight")
    assert f"not '{weight}'" in problem.message


def test_percentages_must_add_up_to_100() -> None:
    arms = ARMS.replace("weight: 50%", "weight: 40%", 1)
    assert_problem(split_step(arms), 8, 7, "the variants' weights add up to 90%, not 100%",
                   "steps[0].split")


def test_weights_are_all_percentages_or_all_numbers() -> None:
    arms = ARMS.replace("weight: 50%", "weight: 1", 1)
    assert_problem(split_step(arms), 8, 7, "write every weight of a split the same way",
                   "steps[0].split")


def test_plain_weights_are_relative() -> None:
    arms = ARMS.replace("weight: 50%", "weight: 2", 1).replace("weight: 50%", "weight: 6")
    plan = load_journey_text(split_step(arms), FILE)
    assert [v.share for v in plan.steps[0].split] == [0.25, 0.75]


def test_a_split_needs_two_variants() -> None:
    arms = ARMS.split("      - variant: b")[0]
    text = split_step(arms).replace("    next: end\n", "")
    assert_problem(text, 8, 7, "a split needs at least 2 variants, this one has 1",
                   "steps[0].split")


@pytest.mark.parametrize(("extra", "key"), [("    next: one\n", "next"),
                                            ("    branch:\n      - else: one\n", "branch"),
                                            ("    wait_for: {event: visit, timeout: 1d}\n",
                                             "wait_for")])
def test_a_split_goes_with_no_other_way_on(extra: str, key: str) -> None:
    assert_problem(split_step(ARMS, extra), 7, 5, f"step 'pick' has both 'split' and '{key}'",
                   f"steps[0].{key}")


def test_an_unknown_goto_gets_a_did_you_mean() -> None:
    arms = ARMS.replace("goto: two", "goto: tow")
    assert_problem(split_step(arms), 13, 15, "unknown step 'tow' in goto; did you mean 'two'?",
                   "steps[0].split[1].goto")


def test_a_variant_needs_its_keys_and_knows_them() -> None:
    arms = ARMS.replace("        goto: one\n", "        got: one\n")
    found = problems_of(split_step(arms))
    messages = [str(p) for p in found]
    assert any(m.startswith(f"{FILE}:10:9: unknown key 'got'") and "did you mean 'goto'" in m
               for m in messages), messages


def test_journey_variant_is_readable_and_checked_by_name() -> None:
    text = split_step(ARMS).replace("    actions: [{tag: two}]\n",
                                    "    if: \"journey.variant == 'b'\"\n"
                                    "    actions: [{tag: two}]\n")
    load_journey_text(text, FILE)
    bad = text.replace("journey.variant ==", "journey.varient ==")
    assert_problem(bad, 18, 18, "did you mean 'variant'", "steps[2].if")


def test_the_timing_lint_follows_each_variant(tmp_path: Path) -> None:
    text = """\
journey: j
version: 1
entry:
  event: visit
goal:
  event: visit
  within: 2d
steps:
  - id: pick
    split:
      - {variant: a, weight: 1, goto: late}
      - {variant: b, weight: 1, goto: later}
  - id: late
    at: day 3
    actions: [{send: email, template: t}]
    next: end
  - id: later
    at: day 5
    actions: [{send: email, template: t}]
"""
    (tmp_path / FILE).write_text(text)
    checked = check_journeys([tmp_path / FILE])
    assert checked.problems == []
    warnings = [str(p) for p in checked.warnings]
    assert any("closes before the first message can go out (day 3)" in w for w in warnings)


# --------------------------------------------------------------------------- the draw


def run_customers(plan: JourneyPlan, count: int, converts: frozenset[int] = frozenset()
                  ) -> tuple[Counter[str], dict[str, CustomerState]]:
    runtime = JourneyRuntime(Catalog([plan]))
    ctx = runtime.context(Aggregates())
    effects = Effects()
    states = {}
    for number in range(count):
        state = CustomerState(f"c{number}")
        state.profile.email = f"c{number}@example.com"
        for day, event_id in ((0, "v1"), (5, "v2")):
            if day and number not in converts:
                continue
            event = validate_event({"event_id": event_id, "customer_id": state.customer_id,
                                    "type": "visit", "ts": T0 + day * DAY, "venue_id": "v1",
                                    "amount": 20.0})
            runtime.apply_event(state, event, ctx, effects)
        runtime.fire_due(state, T0 + 40 * DAY, ctx, effects)
        states[state.customer_id] = state
    return effects.stats, states


def test_the_draw_follows_the_weights_and_is_fixed_per_customer() -> None:
    plan = load_journey_text(SPLIT, FILE)
    stats, states = run_customers(plan, 2000)
    treated_a = stats["offer_test@1|split:pick:a"]
    treated_b = stats["offer_test@1|split:pick:b"]
    held = stats["offer_test@1|split_holdout:pick:a"] + stats["offer_test@1|split_holdout:pick:b"]
    assert treated_a + treated_b == stats["offer_test@1|entered"]
    assert held == stats["offer_test@1|entered_holdout"]
    assert 0.21 < treated_a / (treated_a + treated_b) < 0.29  # weight 1 of 4
    again, states_again = run_customers(plan, 2000)
    assert again == stats
    for customer_id, state in states.items():
        variant = state.enrollments["offer_test"].variant
        assert variant == states_again[customer_id].enrollments["offer_test"].variant
        draw = stable_fraction(customer_id, "offer_test", "pick")
        assert variant == pick_variant(plan.steps[0].split, draw).name
    # each variant's customers went to its step: messages per variant add up
    assert stats["offer_test@1|variant_sent:a"] == stats["offer_test@1|sent:send_a:email"]
    assert stats["offer_test@1|variant_sent:b"] == stats["offer_test@1|sent:send_b:email"]


def test_two_splits_draw_independently() -> None:
    text = SPLIT.replace("""  - id: send_a
    actions:""", """  - id: send_a
    split:
      - {variant: x, weight: 1, goto: send_b}
      - {variant: y, weight: 1, goto: send_b}
    actions:""").replace("    next: end\n", "")
    plan = load_journey_text(text, FILE)
    _, states = run_customers(plan, 2000)
    pairs = Counter(state.enrollments["offer_test"].variant for state in states.values())
    assert set(pairs) == {"a,x", "a,y", "b"}
    assert 0.4 < pairs["a,x"] / (pairs["a,x"] + pairs["a,y"]) < 0.6


def test_goals_count_for_the_variant_and_the_holdout_control() -> None:
    plan = load_journey_text(SPLIT, FILE)
    stats, _ = run_customers(plan, 600, converts=frozenset(range(0, 600, 2)))
    key = "offer_test@1|"
    assert stats[key + "goal_variant:a"] + stats[key + "goal_variant:b"] == stats[key + "goal"]
    assert (stats[key + "goal_holdout_variant:a"] + stats[key + "goal_holdout_variant:b"]
            == stats[key + "goal_holdout"])
    report = build_report(stats, [plan], RunFacts("now", "test")).journeys[0]
    (experiment,) = report.experiments
    assert [v.variant for v in experiment.variants] == ["a", "b"]
    assert sum(v.entered for v in experiment.variants) == report.entered
    assert experiment.holdout == report.entered_holdout
    assert sum(v.goals for v in experiment.variants) == stats[key + "goal"]
    assert experiment.variants[0].target == "send_a"
    assert experiment.verdict == "no_difference"  # every other customer came back


def test_a_goal_reached_before_the_split_counts_for_the_variant() -> None:
    text = SPLIT.replace("  - id: pick\n", "  - id: pick\n    at: day 7\n")
    plan = load_journey_text(text, FILE)
    stats, _ = run_customers(plan, 200, converts=frozenset(range(200)))
    key = "offer_test@1|"
    assert stats[key + "goal_variant:a"] + stats[key + "goal_variant:b"] == stats[key + "goal"]


def test_the_variant_is_stored_and_old_states_still_load() -> None:
    plan = load_journey_text(SPLIT, FILE)
    _, states = run_customers(plan, 1)
    state = states["c0"]
    stored = CustomerState.from_bytes("c0", state.to_bytes())
    assert stored.enrollments["offer_test"].variant == state.enrollments["offer_test"].variant
    old_row = ["thanks", 1, 1, T0, False, -1, T0, None, T0, "completed"]
    old = CustomerState.from_bytes("c0", pack({"p": {}, "e": {"thanks": old_row}}))
    assert old.enrollments["thanks"].variant is None


def test_the_explanation_names_the_variant_drawn() -> None:
    plan = load_journey_text(SPLIT, FILE)
    runtime = JourneyRuntime(Catalog([plan]))
    ctx = runtime.context(Aggregates())
    state = CustomerState("c7")
    state.profile.email = "c7@example.com"
    state.profile.timezone = "Europe/Paris"
    event = validate_event({"event_id": "e1", "customer_id": "c7", "type": "visit",
                            "ts": T0, "venue_id": "v1", "amount": 20.0})
    explanation = Explainer(runtime, NO_POLICIES).explain(state, plan, ctx, T0, event)
    pick = next(step for step in explanation.steps if step.step_id == "pick")
    expected = pick_variant(plan.steps[0].split, stable_fraction("c7", "offer_test", "pick"))
    assert pick.variant == expected.name
    assert pick.next_step == f"send_{expected.name}"
    text = format_explanations("c7", "Europe/Paris", [explanation])
    assert f"step pick (at entry) at 2025-03-03 12:06: ran; drew variant " \
           f"{expected.name}; next send_{expected.name}" in text


# --------------------------------------------------------------------------- reports


def counters(a: tuple[int, int], b: tuple[int, int], holdout: tuple[int, int]
             ) -> dict[str, int]:
    key = "offer_test@1|"
    return {key + "entered": a[0] + b[0], key + "entered_holdout": holdout[0],
            key + "goal": a[1] + b[1], key + "goal_holdout": holdout[1],
            key + "split:pick:a": a[0], key + "split:pick:b": b[0],
            key + "split_holdout:pick:a": holdout[0],
            key + "goal_variant:a": a[1], key + "goal_variant:b": b[1],
            key + "goal_holdout_variant:a": holdout[1],
            key + "variant_sent:a": a[0], key + "variant_sent:b": b[0]}


def experiment_of(stats: dict[str, int]):  # type: ignore[no-untyped-def]
    plan = load_journey_text(SPLIT, FILE)
    return build_report(stats, [plan], RunFacts("now", "test")).journeys[0].experiments[0]


def test_b_wins_when_the_interval_of_the_difference_is_above_zero() -> None:
    experiment = experiment_of(counters((1000, 100), (1000, 160), (200, 16)))
    assert experiment.verdict == "winner" and experiment.winner == "b"
    assert experiment.reading.startswith("b wins: it converts 6.0 points more than a (95% CI")
    (versus,) = experiment.comparisons
    assert (versus.variant, versus.other) == ("b", "a")
    assert versus.result.ci is not None and versus.result.ci.low > 0
    b = experiment.variants[1]
    assert b.rate == 0.16 and b.ci is not None and b.ci.low < 0.16 < b.ci.high
    assert b.vs_holdout is not None and b.vs_holdout.result.lift == pytest.approx(0.08)


def test_no_difference_yet_when_the_interval_spans_zero() -> None:
    experiment = experiment_of(counters((1000, 100), (1000, 110), (200, 16)))
    assert experiment.verdict == "no_difference" and experiment.winner is None
    assert experiment.reading.startswith("no difference yet")


def test_sample_too_small_under_the_minimums() -> None:
    few = experiment_of(counters((1000, 100), (60, 30), (200, 16)))
    assert few.verdict == "too_small"
    assert few.reading == "sample too small: b has fewer than 100 customers"
    rare = experiment_of(counters((1000, 2), (1000, 5), (200, 0)))
    assert rare.verdict == "too_small" and "7 conversions" in rare.reading


def test_reports_show_each_variant_with_its_lift() -> None:
    plan = load_journey_text(SPLIT, FILE)
    report = build_report(counters((1000, 100), (1000, 160), (200, 16)), [plan],
                          RunFacts("now", "test"))
    text = format_report(report)
    assert "experiment at step pick: b wins" in text
    lines = text.splitlines()
    row_b = next(line for line in lines if line.strip().startswith("b "))
    assert "16.0%" in row_b and "+8.0 pp" in row_b
    assert any(line.strip().startswith("b vs a: +6.0 pp (95% CI") for line in lines)
    assert format_experiments(report).startswith("offer_test (offer_test@1)\n")
    page = render_html(report)
    assert "Experiment at step pick" in page and "b vs a" in page
    assert "split: a 25% · b 75%" in page  # the flow diagram's split box


def test_a_journey_without_splits_has_no_experiments() -> None:
    plan = load_journey_text(SPLIT.replace("holdout: 10%\n", ""), FILE)
    report = build_report({"offer_test@1|entered": 3}, [plan], RunFacts("now", "test"))
    assert [e.verdict for e in report.journeys[0].experiments] == ["too_small"]
    plain = load_journey_text(HEAD + TAIL.replace("    next: end\n", ""), FILE)
    report = build_report({"j@1|entered": 3}, [plain], RunFacts("now", "test"))
    assert report.journeys[0].experiments == [] and format_experiments(report) == ""


def test_text_compared_with_journey_variant_must_name_a_variant() -> None:
    text = split_step(ARMS).replace("    actions: [{tag: two}]\n",
                                    "    if: \"journey.variant == 'bb'\"\n"
                                    "    actions: [{tag: two}]\n")
    assert_problem(text, 18, 29, "'bb' is not a variant of this journey; did you mean 'b'? "
                   "(variants of this journey: a, b)", "steps[2].if")
    members = text.replace("journey.variant == 'bb'", "'c' in journey.variants")
    assert_problem(members, 18, 10, "'c' is not a variant of this journey", "steps[2].if")


def test_journey_variant_in_a_journey_without_a_split_is_refused() -> None:
    text = HEAD + TAIL.replace("    next: end\n", "").replace("    actions: [{tag: two}]\n",
                               "    if: \"journey.variant == 'b'\"\n"
                               "    actions: [{tag: two}]\n")
    assert_problem(text, 9, 29, "'b' is not a variant of this journey: it has no split step",
                   "steps[1].if")


DECLARED_SPLIT = """\
journey: table_split
version: 1
entry:
  event: table_booked
goal:
  event: ticket_scanned
  within: 30d
exit:
  - event: presence
    when: "event.source == 'walet_pass'"
steps:
  - id: pick
    split:
      - {variant: a, weight: 1, goto: remind}
      - {variant: b, weight: 1, goto: end}
  - id: remind
    at: {date: event.booked_for, before: 1d}
    actions: [{send: email, template: table_reminder}]
"""


def test_a_split_keeps_the_declared_types_and_known_values_of_the_vocabulary() -> None:
    from journeys_dsl.event_types import journey_vocabulary

    vocabulary = journey_vocabulary(None, Path(__file__).resolve().parents[2] / "examples"
                                    / "event_types.yaml")
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(DECLARED_SPLIT, FILE, vocabulary)
    assert [str(p) for p in caught.value.problems] == [
        "x.yaml:10:28: 'walet_pass' is not a presence source; did you mean 'wallet_pass'? "
        "(presence sources: wallet_pass, wifi, beacon, sensor, app, qr) (at exit[0].when)"]
    fixed = DECLARED_SPLIT.replace("walet_pass", "wallet_pass")
    assert load_journey_text(fixed, FILE, vocabulary).goal is not None
