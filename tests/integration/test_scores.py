"""Scores and segments in the hot path, and `journeys fit` feeding `journeys run --scores`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from harness import Engine, at, visit

from engine.app.generator import ChainConfig, write_jsonl
from engine.scoring.model import load_model

pytestmark = pytest.mark.integration

SCORED = """\
journey: scored
version: 1
entry:
  event: visit
  when: "customer.visit_count == 4"
steps:
  - id: report
    actions:
      - send: webhook
        template: scores
        vars:
          p_alive: "customer.p_alive"
          churn: "customer.churn_risk"
          visits: "customer.expected_visits"
          spend: "customer.expected_spend"
          clv: "customer.clv"
          segment: "customer.segment"
          segments: "customer.segments"
          tier: "customer.loyalty_tier"
"""


def test_scores_and_segments_reach_the_conditions(tmp_path: Path, redis_url: str,
                                                        key_prefix: str) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "scored.yaml").write_text(SCORED)
    engine = Engine(tmp_path, redis_url, key_prefix, [str(folder)])
    events = [visit("ann", at(day), amount=40.0) for day in (0, 7, 14)]
    events += [visit("zed", at(15)), visit("ann", at(60), amount=40.0), visit("zed", at(61))]
    commands = engine.run(events)
    assert [c["customer_id"] for c in commands] == ["ann"]
    scores = commands[0]["vars"]
    # ann is scored after the visit of day 60
    # (3 repeat visits, the last one now: P(alive) = 1 / (1 + a / (b + x - 1)))
    assert scores["p_alive"] == pytest.approx(1 / (1 + 0.5 / 5.0), rel=1e-9)
    assert scores["churn"] == pytest.approx(1.0 - scores["p_alive"], abs=1e-12)
    assert scores["visits"] > 0 and scores["spend"] > 0 and scores["clv"] > 0
    assert scores["segment"] == "occasional"  # one visit in the past 30 days, four in all
    assert "occasional" in scores["segments"] and scores["tier"] == "starter"


def journeys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


def test_fit_writes_a_model_that_run_loads(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=5, customers=600, days=240), events)
    model_path = tmp_path / "scores.json"
    fitted = journeys("fit", str(events), "--unit", "week", "--out", str(model_path),
                      cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    printed = orjson.loads(fitted.stdout)
    assert set(printed["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert printed["unit"] == "week"
    model = load_model(model_path)
    assert model.unit_days == 7.0 and model.bgnbd.r == printed["bgnbd"]["r"]
    ran = journeys("run", "--journeys", str(Path(__file__).parents[2] / "examples/journeys"),
                   "--events", str(events), "--scores", str(model_path), "--commands",
                   str(tmp_path / "commands.jsonl"), "--dead-letter", str(tmp_path / "d.jsonl"),
                   cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"unit": "week", "bgnbd": {"r": 1}}')
    refused = journeys("run", "--journeys", str(tmp_path), "--events", str(events),
                       "--scores", str(broken), cwd=tmp_path)
    assert refused.returncode == 2
    assert "broken.json" in refused.stderr
