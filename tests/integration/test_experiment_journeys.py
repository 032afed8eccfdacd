"""A split journey through the real dataflow: the draw lands near the weights, a customer
keeps the variant after a replay, per-variant statistics add up, and `journeys report` and
the backtest show each variant's conversion."""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path

import pytest
from harness import EXAMPLES, Engine, at, event, visit

from engine.app.generator import ChainConfig, write_jsonl
from engine.console.app import create_app
from engine.console.live import EngineModels, LiveEngine
from engine.core.experiments import pick_variant
from engine.core.runtime import stable_fraction
from engine.reporting.backtest import backtest, report_command
from engine.storage.redis_client import connect
from journeys_dsl.loader import load_journey_file

with warnings.catch_warnings():  # this Starlette asks for a test client on `httpx2`
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.integration

JOURNEY = EXAMPLES / "experiments" / "newcomer_offer_test.yaml"
KEY = "newcomer_offer_test@1|"
CUSTOMERS = 400
TEMPLATES = {"newcomer_thanks": "dessert", "lost_regular_ten_off": "ten_off"}


def history() -> list[dict]:
    """First visits spread over 20 days; every third customer comes back 10 days later."""
    events = []
    for number in range(CUSTOMERS):
        customer = f"guest{number:03d}"
        day = number % 20
        events.append(visit(customer, at(day, 12 + number % 8)))
        if number % 3 == 0:
            events.append(visit(customer, at(day + 10, 13)))
    events.append(event("profile", "bystander", at(60), name="Bea"))  # moves the clock
    return sorted(events, key=lambda e: e["ts"])


def expected_variant(customer: str) -> str:
    plan = load_journey_file(JOURNEY)
    draw = stable_fraction(customer, plan.journey_id, "pick_gift")
    return pick_variant(plan.steps[0].split, draw).name


def gifts(commands: list[dict]) -> dict[str, str]:
    """The variant each customer's gift message shows."""
    return {c["customer_id"]: TEMPLATES[c["template"]] for c in commands
            if c["template"] in TEMPLATES}


def test_a_split_through_the_dataflow(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    events = history()
    (tmp_path / "a").mkdir()
    engine = Engine(tmp_path / "a", redis_url, key_prefix, [str(JOURNEY)], addresses=True)
    commands = engine.run(events)
    stats = engine.stats()

    # near the weights (50/50): 360 or so treated, three standard deviations is about 28
    dessert = stats[KEY + "split:pick_gift:dessert"]
    ten_off = stats[KEY + "split:pick_gift:ten_off"]
    assert dessert + ten_off == stats[KEY + "entered"] > 300
    assert abs(dessert - ten_off) < 2 * 28
    held = (stats[KEY + "split_holdout:pick_gift:dessert"]
            + stats[KEY + "split_holdout:pick_gift:ten_off"])
    assert held == stats[KEY + "entered_holdout"] > 0

    # each customer got the gift of the variant drawn for them
    drawn = gifts(commands)
    assert len(drawn) == dessert + ten_off
    assert all(variant == expected_variant(customer) for customer, variant in drawn.items())
    assert Counter(drawn.values()) == {"dessert": dessert, "ten_off": ten_off}

    # per-variant statistics add up
    sent = sum(count for name, count in stats.items() if name.startswith(KEY + "sent:"))
    assert stats[KEY + "variant_sent:dessert"] + stats[KEY + "variant_sent:ten_off"] == sent
    assert stats[KEY + "variant_sent:dessert"] == stats[KEY + "sent:dessert_gift:email"]
    assert (stats[KEY + "goal_variant:dessert"] + stats[KEY + "goal_variant:ten_off"]
            == stats[KEY + "goal"] > 0)
    assert (stats[KEY + "goal_holdout_variant:dessert"]
            + stats[KEY + "goal_holdout_variant:ten_off"] == stats[KEY + "goal_holdout"])

    # a replay, on fresh state and another shard count, draws the same variants
    (tmp_path / "b").mkdir()
    replay = Engine(tmp_path / "b", redis_url, key_prefix + "-replay", [str(JOURNEY)],
                    shards=2, addresses=True)
    again = replay.run(events)
    assert gifts(again) == drawn
    assert sorted(c["command_id"] for c in again) == sorted(c["command_id"] for c in commands)
    assert replay.stats() == stats

    # the live report shows each variant against the holdout and the other variant
    out = io.StringIO()
    assert report_command(redis_url, key_prefix, engine.shards, [str(JOURNEY)], False, out) == 0
    text = out.getvalue()
    assert "experiment at step pick_gift: " in text
    assert "ten_off vs dessert: " in text
    row = next(line for line in text.splitlines() if line.strip().startswith("dessert "))
    assert f"{dessert:,}" in row and "dessert_gift" in row

    # the console's journey page and explain view show the split
    client = connect(redis_url)
    try:
        live = LiveEngine(client, key_prefix, engine.shards, EngineModels.load(None, None, None))
        browser = TestClient(create_app(live, "token"),
                             headers={"Authorization": "Bearer token"})
        page = browser.get("/journeys/newcomer_offer_test")
        assert page.status_code == 200
        assert "Experiment at step pick_gift" in page.text and "ten_off vs dessert" in page.text
        assert "split: dessert 50% · ten_off 50%" in page.text
        customer = next(iter(drawn))
        explained = browser.get(f"/customers/{customer}/explain",
                                params={"journey": "newcomer_offer_test"})
        assert explained.status_code == 200
        assert f"variant {drawn[customer]}" in explained.text
    finally:
        client.close()


def test_the_backtest_reports_the_experiment(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=5, customers=500, days=120), events)
    result = backtest([str(JOURNEY)], str(events), tmp_path / "report.html", shards=2)
    (journey,) = result.report.journeys
    (experiment,) = journey.experiments
    assert [v.variant for v in experiment.variants] == ["dessert", "ten_off"]
    assert sum(v.entered for v in experiment.variants) == journey.entered > 0
    assert experiment.holdout == journey.entered_holdout
    assert experiment.verdict in ("winner", "no_difference", "too_small")
    page = result.html.read_text()
    assert "Experiment at step pick_gift" in page and "ten_off vs dessert" in page
