"""The eleven reference journeys in examples/journeys load, match the schema and mean what
the product design says."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from journeys_dsl import plan
from journeys_dsl.commands import schema_command, validate_command
from journeys_dsl.loader import load_journey_file, load_journey_text, load_journeys
from journeys_dsl.schema import journey_json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"
FILES = sorted(EXAMPLES.glob("*.yaml"))
DAY = 86_400


def by_id() -> dict[str, plan.JourneyPlan]:
    return {journey.journey_id: journey for journey in load_journeys([EXAMPLES])}


def test_there_are_eleven_examples() -> None:
    assert [f.name[:3] for f in FILES] == [f"{n:02d}_" for n in range(1, 12)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    journey = load_journey_file(path)
    assert journey.version >= 1
    assert journey.steps


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_matches_the_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(journey_json_schema())
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_schema_is_valid_and_rejects_mistakes() -> None:
    schema = journey_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load((EXAMPLES / "01_impressed_newcomer.yaml").read_text())
    assert validator.is_valid(good)
    for change in (
        lambda j: j["steps"][0].update(after="2d"),                   # two timings
        lambda j: j["steps"][0].update(acitons=[]),                   # unknown key
        lambda j: j["entry"].update(event="ratings"),                 # unknown event
        lambda j: j["steps"][0]["actions"][1].update(send="mail"),    # unknown channel
        lambda j: j["offers"]["dessert"].update(dayparts=["diner"]),  # unknown daypart
        lambda j: j["offers"]["dessert"].update(valid_for="14"),      # no unit
        lambda j: j.update(journey="Impressed"),                      # bad id
        lambda j: j.update(version=0),
        lambda j: j["steps"][0]["actions"][0].update(tag="x"),        # two action kinds
    ):
        broken = yaml.safe_load((EXAMPLES / "01_impressed_newcomer.yaml").read_text())
        change(broken)
        assert not validator.is_valid(broken)


def test_every_schema_property_has_a_description() -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}.{name}"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(journey_json_schema(), "$")


def test_schema_command_prints_json() -> None:
    out = io.StringIO()
    assert schema_command(out) == 0
    assert json.loads(out.getvalue()) == journey_json_schema()


def test_validate_command_on_the_examples() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert validate_command([str(EXAMPLES)], out, err) == 0
    assert out.getvalue() == "ok: 11 journeys in 11 files\n"


def test_impressed_newcomer() -> None:
    journey = by_id()["impressed_newcomer"]
    entry = journey.entry
    assert isinstance(entry, plan.EventEntry) and entry.event_type == "rating"
    assert entry.condition is not None
    scope = {"event": {"stars": 5}, "customer": {"visit_count": 1, "last_visit_amount": 80},
             "venue": {"avg_amount": 50}}
    assert entry.condition.test(scope)
    assert not entry.condition.test({**scope, "venue": {"avg_amount": 90}})
    assert not entry.condition.test({**scope, "event": {"stars": 4}})
    assert journey.holdout == pytest.approx(0.1)
    assert journey.goal == plan.Goal("visit", None, 30 * DAY)  # a second visit
    dessert = journey.offers["dessert"]
    assert (dessert.dayparts, dessert.valid_for_s) == (("lunch",), 14 * DAY)
    thanks, reminder, check, vip = journey.steps
    assert thanks.timing == plan.AtTime(1 * DAY, None)
    assert plan.IssueAction("dessert") in thanks.actions
    assert reminder.timing == plan.AtTime(7 * DAY, None)
    assert reminder.guard is not None
    assert reminder.guard.test({"offer": {"dessert": {"redeemed": False}}})
    assert not reminder.guard.test({"offer": {"dessert": {"redeemed": True}}})
    assert check.timing == plan.AtTime(15 * DAY, None)
    assert [b.target for b in check.branches] == [vip.index, plan.END]
    assert vip.next_index == plan.END


def test_lost_regular() -> None:
    journey = by_id()["lost_regular"]
    assert isinstance(journey.entry, plan.InactivityEntry)
    assert journey.entry.after_s == 45 * DAY
    assert journey.entry.condition is not None
    assert journey.entry.condition.test({"customer": {"visits_90d": 4}})
    assert not journey.entry.condition.test({"customer": {"visits_90d": 3}})
    assert journey.re_entry == plan.ReEntry("after", 90 * DAY)
    assert journey.exits == (plan.ExitRule("visit", None, "came_back"),)
    assert journey.goal == plan.Goal("visit", None, 30 * DAY)
    assert journey.offers["ten_off"].valid_for_s == 7 * DAY
    assert [s.timing for s in journey.steps] == [
        plan.Immediate(), plan.AtTime(15 * DAY, None), plan.AtTime(22 * DAY, None)]
    # day 45, 60 and 67 of inactivity
    assert [45 + getattr(s.timing, "offset_s", 0) // DAY for s in journey.steps] == [45, 60, 67]


def test_birthday_and_anniversary() -> None:
    journeys = by_id()
    birthday = journeys["birthday"]
    assert isinstance(birthday.entry, plan.DateEntry)
    assert (birthday.entry.kind, birthday.entry.offset_s) == ("birthday", -3 * DAY)
    assert birthday.re_entry == plan.ReEntry("always")
    assert birthday.offers["birthday_dessert"].valid_for_s == 7 * DAY
    anniversary = journeys["first_visit_anniversary"]
    assert isinstance(anniversary.entry, plan.DateEntry)
    assert anniversary.entry.kind == "first_visit_anniversary"
    assert plan.PointsAction(500, "first_visit_anniversary") in anniversary.steps[0].actions


def test_off_peak_and_vip() -> None:
    journeys = by_id()
    nudge = journeys["off_peak_nudge"]
    assert nudge.steps[0].timing == plan.AtTime(1 * DAY, (17, 0))
    assert nudge.offers["evening_points"].dayparts == ("dinner",)
    vip = journeys["vip_invitation"]
    assert vip.entry.condition is not None
    customer = {"total_spend": 1200, "tags": [], "segments": ["regular", "vip"]}
    assert vip.entry.condition.test({"customer": customer})
    assert not vip.entry.condition.test({"customer": {**customer, "tags": ["vip_invited"]}})
    assert not vip.entry.condition.test({"customer": {**customer, "segments": ["regular"]}})
    assert plan.TagAction("vip_invited", remove=False) in vip.steps[0].actions


def test_review_request() -> None:
    journey = by_id()["review_request"]
    ask, wait, second = journey.steps
    assert ask.timing == plan.After(2 * 3600)
    assert wait.timing == plan.WaitFor("rating", None, 3 * DAY, second.index)
    assert wait.next_index == plan.END
    assert journey.exits[0].event_type == "rating"


def test_at_risk_winback() -> None:
    journey = by_id()["at_risk_winback"]
    assert journey.entry == plan.PAliveEntry(0.3, journey.entry.condition)
    assert journey.goal == plan.Goal("visit", None, 21 * DAY)
    assert journey.holdout == pytest.approx(0.1)
    assert journey.steps[0].timing == plan.Immediate()
    assert plan.IssueAction("comeback") in journey.steps[0].actions


def test_post_presence_thanks() -> None:
    journey = by_id()["post_presence_thanks"]
    entry = journey.entry
    assert isinstance(entry, plan.EventEntry) and entry.event_type == "presence"
    assert entry.condition is not None
    seen = {"event": {"source": "wallet_pass", "zone": "toilets"}}
    assert entry.condition.test(seen)
    assert not entry.condition.test({"event": {"source": "wifi", "zone": "toilets"}})
    assert not entry.condition.test({"event": {"source": "wallet_pass", "zone": "parking"}})
    classify = journey.steps[0]
    assert classify.timing == plan.Immediate() and not classify.actions
    targets = [journey.steps[b.target].step_id for b in classify.branches]
    assert targets == ["thanks_vip", "thanks_first", "thanks_dormant", "thanks_regular"]
    for variant in ("first", "regular", "dormant", "vip"):
        thanks = journey.steps[journey.step_index[f"thanks_{variant}"]]
        incentive = journey.steps[thanks.next_index]
        assert thanks.timing == plan.After(3 * 3600)
        assert incentive.timing == plan.After(2 * DAY)
        assert any(isinstance(a, plan.IssueAction) for a in incentive.actions)
    assert journey.goal is not None and journey.goal.event_type == "presence"
    assert journey.re_entry == plan.ReEntry("after", 30 * DAY)


def test_the_language_reference_opening_example_is_valid() -> None:
    doc = (EXAMPLES.parents[1] / "docs" / "journeys.md").read_text(encoding="utf-8")
    first_block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    journey = load_journey_text(first_block, "docs/journeys.md")
    assert journey.journey_id == "impressed_newcomer"
