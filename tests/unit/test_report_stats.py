"""Report statistics: intervals against published values, counters into report models."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from engine.reporting.errors import CounterError
from engine.reporting.flow import flow_diagram
from engine.reporting.html import render_html
from engine.reporting.intervals import newcombe, wilson
from engine.reporting.labels import counter_label, ending_label, reason_label
from engine.reporting.model import RunFacts
from engine.reporting.stats import build_report, conversion, reading, split_counters
from engine.reporting.svg import esc
from engine.reporting.terminal import format_report, report_json
from engine.reporting.textwidth import fit, text_width
from journeys_dsl.loader import load_journey_text

JOURNEY = """
journey: welcome
version: 2
entry:
  event: visit
holdout: 10%
goal:
  event: visit
  within: 30d
offers:
  dessert:
    description: A dessert
    valid_for: 14d
steps:
  - id: thanks
    at: day 1
    actions:
      - issue: dessert
      - send: email
        template: thanks
  - id: wait_visit
    wait_for:
      event: visit
      timeout: 3d
      on_timeout: nudge
  - id: nudge
    after: 2h
    actions:
      - send: sms
        template: nudge
"""


def test_wilson_matches_hand_computation() -> None:
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half = 1.96/1.38416 * sqrt(0.025 + 0.0096040)
    interval = wilson(5, 10)
    assert interval.low == pytest.approx(0.236593, abs=1e-5)
    assert interval.high == pytest.approx(0.763407, abs=1e-5)
    # x = 0: the interval is [0, z²/(n + z²)]
    assert wilson(0, 10).low == 0.0
    assert wilson(0, 10).high == pytest.approx(3.841459 / 13.841459, abs=1e-6)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17, table II, method 10
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
])
def test_newcombe_matches_published_intervals(x1: int, n1: int, x2: int, n2: int, low: float,
                                              high: float) -> None:
    interval = newcombe(x1, n1, x2, n2)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_wilson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        wilson(0, 0)
    with pytest.raises(ValueError, match=r"within 0\.\.3"):
        wilson(4, 3)


def test_conversion_lift_and_verdicts() -> None:
    result = conversion(70, 56, 80, 48)
    assert result.treated_rate == pytest.approx(0.8)
    assert result.holdout_rate == pytest.approx(0.6)
    assert result.lift == pytest.approx(0.2)
    assert result.relative_lift == pytest.approx(0.2 / 0.6)
    assert result.verdict == "lift"
    assert reading(result).startswith("significant lift: treated customers convert 20.0 points")
    flat = conversion(10, 1, 20, 2)
    assert flat.lift == pytest.approx(0.0)
    assert flat.verdict == "no_significant_lift"
    assert "spans 0" in reading(flat)
    assert conversion(20, 0, 10, 9).verdict == "negative"
    assert conversion(5, 1, 0, 0).verdict == "no_holdout"
    assert conversion(0, 0, 5, 1).verdict == "no_entries"
    assert conversion(10, 3, 10, 0).relative_lift is None
    with pytest.raises(CounterError, match="treated"):
        conversion(-1, 0, 3, 1)


def _stats() -> Counter[str]:
    return Counter({
        "welcome@2|entered": 90, "welcome@2|entered_holdout": 10,
        "welcome@2|entered_week:2025-W02": 60, "welcome@2|entered_week:2025-W01": 30,
        "welcome@2|entered_holdout_week:2025-W01": 10,
        "welcome@2|entered_segment:new": 90, "welcome@2|entered_holdout_segment:new": 10,
        "welcome@2|goal": 45, "welcome@2|goal_holdout": 2,
        "welcome@2|goal_segment:new": 45, "welcome@2|goal_holdout_segment:new": 2,
        "welcome@2|reached:thanks": 90, "welcome@2|holdout:thanks": 10,
        "welcome@2|sent:thanks:email": 80, "welcome@2|no_consent:thanks:email": 10,
        "welcome@2|edge:thanks:wait_visit": 100, "welcome@2|wait_met:wait_visit": 40,
        "welcome@2|wait_timeout:wait_visit": 60, "welcome@2|edge:wait_visit:nudge": 60,
        "welcome@2|edge:wait_visit:end": 40, "welcome@2|reached:nudge": 55,
        "welcome@2|holdout:nudge": 5, "welcome@2|sent:nudge:sms": 50,
        "welcome@2|capped:nudge:sms": 5, "welcome@2|edge:nudge:end": 60,
        "welcome@2|voucher_issued:dessert": 90, "welcome@2|voucher_redeemed:dessert": 30,
        "welcome@2|voucher_rejected:expired": 4, "welcome@2|completed": 100,
        "welcome@2|quiet_delayed:nudge": 7, "welcome@2|unreachable:thanks:email": 3,
        "welcome@2|voucher_unreached:dessert": 13, "welcome@2|points_granted": 500,
        "welcome@1|entered": 3, "welcome@1|reached:hello": 3, "welcome@1|edge:hello:end": 3,
        "welcome@1|exit:came_back": 1, "welcome@1|completed": 2,
        "vouchers|unknown_code": 2,
    })


def test_counters_split_into_journeys_and_chain() -> None:
    journeys, chain = split_counters(_stats())
    assert set(journeys) == {"welcome@1", "welcome@2"}
    assert journeys["welcome@2"]["entered"] == 90
    assert chain == {"vouchers|unknown_code": 2}


def test_report_of_a_planned_version() -> None:
    plan = load_journey_text(JOURNEY, "welcome.yaml")
    report = build_report(_stats(), [plan], RunFacts("now", "test"))
    assert [j.key for j in report.journeys] == ["welcome@1", "welcome@2"]
    journey = report.journeys[1]
    assert journey.in_plan and journey.has_goal
    assert (journey.entered, journey.entered_holdout, journey.messages) == (90, 10, 130)
    assert [(w.week, w.treated, w.holdout) for w in journey.weeks] == [
        ("2025-W01", 30, 10), ("2025-W02", 60, 0)]
    thanks, wait, nudge = journey.steps
    assert (thanks.step_id, thanks.timing, thanks.reached, thanks.holdout) == (
        "thanks", "day 1", 90, 10)
    assert thanks.sent == {"email": 80}
    assert thanks.not_sent == {"no_consent:email": 10, "unreachable:email": 3}
    assert (wait.timing, wait.wait_met, wait.wait_timeout) == ("wait for visit, 3d", 40, 60)
    assert (nudge.timing, nudge.not_sent) == ("after 2h", {"capped:sms": 5})
    assert {(e.source, e.target, e.count, e.condition) for e in journey.edges} == {
        ("thanks", "wait_visit", 100, ""), ("wait_visit", "nudge", 60, "visit came or timed out"),
        ("wait_visit", "end", 40, ""), ("nudge", "end", 60, "")}
    assert [(v.offer, v.issued, v.redeemed, v.unreached) for v in journey.vouchers] == [
        ("dessert", 90, 30, 13)]
    assert journey.rejected == {"expired": 4}
    assert journey.endings == {"completed": 100}
    assert nudge.delayed == 7
    assert journey.details == {"points_granted": 500}
    assert journey.entered_all == 100 and journey.not_sent("unreachable") == 3
    result = journey.conversion
    assert result is not None
    # 45/90 = 50.0% against 2/10 = 20.0%: +30 points, +150% relative
    assert result.lift == pytest.approx(0.3)
    assert result.relative_lift == pytest.approx(1.5)
    # ten holdout customers are too few: the interval reaches below 0
    assert result.ci is not None
    assert (result.ci.low, result.ci.high) == pytest.approx((-0.02593, 0.47542), abs=1e-5)
    assert result.verdict == "no_significant_lift"
    assert [(s.segment, s.conversion.treated_goals) for s in journey.segments] == [("new", 45)]


def test_version_missing_from_the_files_is_shown_from_counters() -> None:
    report = build_report(_stats(), [], RunFacts("now", "test"))
    old = report.journeys[0]
    assert not old.in_plan and not old.has_goal and old.conversion is None
    assert [s.step_id for s in old.steps] == ["hello"]
    assert old.endings == {"completed": 2, "exit:came_back": 1}
    steps = [s.step_id for s in report.journeys[1].steps]
    assert steps == ["thanks", "wait_visit", "nudge"]


def test_outputs_escape_text_and_serialise() -> None:
    stats = Counter({"<b>x@1|entered": 1, "<b>x@1|sent:<i>:email": 1, "<b>x@1|edge:<i>:end": 1})
    report = build_report(stats, [], RunFacts("now", "<script>"))
    page = render_html(report)
    assert "<script>" not in page and "<b>x" not in page and "<i>" not in page
    assert esc("<a&'\">") == "&lt;a&amp;&#x27;&quot;&gt;"
    assert "x@1" in format_report(report)
    assert '"key": "<b>x@1"' in report_json(report)


def test_terminal_and_html_say_the_same_things_in_words() -> None:
    plan = load_journey_text(JOURNEY, "welcome.yaml")
    report = build_report(_stats(), [plan], RunFacts("now", "test"))
    text, page = format_report(report), render_html(report)
    phrases = [
        "event came 40 · timed out 60",  # a wait step: never "reached 0"
        "reached 90 · holdout 10",
        "reached 55 · holdout 5 · delayed for quiet hours 7",
        "10 no consent, 3 no address",
        "5 over the cap",
        "loyalty points granted",
        "redemptions of unknown voucher codes",
        "left: came back",
        "visit came or timed out",
    ]
    for phrase in phrases:
        assert phrase in text, phrase
        assert esc(phrase) in page or phrase in page, phrase
    for raw in ("quiet_delayed", "points_granted", "vouchers|unknown_code", "no_consent",
                "exit:came_back", "unreachable:"):
        assert raw not in text, raw
    assert "entered 100: treated 90, holdout 10" in text
    assert "100 entered: 90 treated, 10 holdout" in page


def test_counter_labels() -> None:
    assert counter_label("points_granted") == "loyalty points granted"
    assert counter_label("loyalty|points_expired") == "loyalty points expired"
    assert counter_label("some_new|thing:a:b") == "some new: thing: a, b"
    assert ending_label("exit:came_back") == "left: came back"
    assert reason_label("unreachable") == "no address"


def test_long_step_ids_are_shortened_with_a_tooltip() -> None:
    long_id = "remind_the_customer_about_the_dessert_voucher_before_it_expires_next_week"
    plan = load_journey_text(JOURNEY.replace("wait_visit", long_id), "welcome.yaml")
    stats = Counter({k.replace("wait_visit", long_id): v for k, v in _stats().items()})
    journey = build_report(stats, [plan], RunFacts("now", "test")).journeys[1]
    diagram = flow_diagram(journey)
    assert f"<title>{long_id}</title>" in diagram  # the whole id as a tooltip
    shown = re.findall(r'class="name"><title>[^<]*</title>([^<]*)</text>', diagram)
    assert shown and all("\u2026" in name for name in shown)
    assert all(text_width(name, 13, bold=True) <= 520 - 24 for name in shown)
    assert text_width("W" * 10, 12) > text_width("i" * 10, 12)
    assert fit("short", 100, 12) == "short"
