"""`journeys demo` end to end: customers answer messages, the lift shows, holdouts get none."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.app.demo import DemoResult, describe, describe_outcome, run_demo
from engine.app.generator import ChainConfig
from engine.app.responses import ResponseModel
from engine.core.runtime import stable_fraction
from engine.reporting.model import RunFacts
from engine.reporting.stats import build_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "journeys"
POLICIES = str(ROOT / "examples" / "policies.yaml")
CHAIN = ChainConfig(seed=11, customers=700, days=420)
OFF = ResponseModel(visit_share=0.0, voucher_visit_share=0.0)
STRONG = ResponseModel(visit_share=0.3, voucher_visit_share=0.8)


def demo(tmp_path: Path, name: str, model: ResponseModel, redis_url: str,
         prefix: str) -> DemoResult:
    out = tmp_path / name
    out.mkdir()
    return run_demo(CHAIN, EXAMPLES, out, model=model, redis_url=redis_url, state_dir=None,
                    shards=4, prefix=f"{prefix}-{name}", policies=POLICIES)


def conversion(result: DemoResult, key: str) -> tuple[int, int, int, int]:
    report = build_report(result.stats, result.plans, RunFacts("", "demo"))
    journey = next(j for j in report.journeys if j.key == key)
    assert journey.conversion is not None
    c = journey.conversion
    return c.treated_goals, c.treated, c.holdout_goals, c.holdout


def test_customers_answer_messages_and_the_lift_shows(tmp_path: Path, redis_url: str,
                                                      key_prefix: str) -> None:
    off = demo(tmp_path, "off", OFF, redis_url, key_prefix)
    on = demo(tmp_path, "on", STRONG, redis_url, key_prefix)
    again = demo(tmp_path, "again", STRONG, redis_url, key_prefix)
    for name in ("events.jsonl", "commands.jsonl"):  # deterministic for a seed
        assert (tmp_path / "on" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert again.stats == on.stats and again.responses == on.responses
    assert off.responses.responses == 0 and on.responses.responses > 100
    assert on.events > off.events
    for key in ("impressed_newcomer@1", "lost_regular@1"):
        goals_off, treated_off, _, _ = conversion(off, key)
        goals_on, treated_on, _, _ = conversion(on, key)
        assert goals_on / treated_on > goals_off / treated_off + 0.1, key
    redeemed = sum(n for k, n in on.stats.items() if "|voucher_redeemed:" in k)
    assert redeemed > 50 and not any("|voucher_redeemed:" in k for k in off.stats)
    assert on.stats["first_visit_anniversary@1|entered"] > 0  # the window spans a year
    # responses answer commands, and commands go to treated customers only
    holdouts = {plan.journey_id: plan.holdout for plan in on.plans}
    for line in (tmp_path / "on" / "commands.jsonl").read_bytes().splitlines():
        command = orjson.loads(line)
        share = holdouts[command["journey"]]
        assert stable_fraction(command["customer_id"], command["journey"]) >= share
    outcome = describe_outcome(on)
    assert f"{redeemed:,} redeemed" in outcome
    assert "80% when it carries a voucher" in describe(CHAIN, STRONG)
    assert "do not respond" in describe(CHAIN, OFF)
