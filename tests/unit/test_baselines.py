"""Benchmark baselines: both run, the naive one agrees with the engine, the Bytewax one fires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.bytewax_native import run_bytewax_native
from benchmarks.naive import run_naive
from engine.app.generator import ChainConfig, write_jsonl
from engine.flow.runner import RunOptions, run_on
from journeys_dsl.loader import load_journeys

LOST_REGULAR = str(Path(__file__).parents[2] / "examples" / "journeys" / "02_lost_regular.yaml")
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baselines") / "events.jsonl"
    write_jsonl(ChainConfig(seed=7, customers=150, days=120), path)
    return path


@pytest.mark.integration
def test_naive_matches_engine(chain_file: Path, tmp_path: Path, redis_url: str,
                              key_prefix: str) -> None:
    naive: list[dict[str, Any]] = []
    result = run_naive(chain_file, [LOST_REGULAR], redis_url, f"{key_prefix}:naive",
                       on_command=naive.append)
    assert result.events > 0 and result.events_per_s > 0
    assert result.commands == len(naive) > 0

    commands = tmp_path / "commands.jsonl"
    options = RunOptions(journeys=[LOST_REGULAR], events=str(chain_file),
                         commands=str(commands), dead_letter=str(tmp_path / "dead.jsonl"),
                         prefix=f"{key_prefix}:engine")
    run_on(redis_url, options, load_journeys([LOST_REGULAR]))
    engine_ids = {orjson.loads(line)["command_id"]
                  for line in commands.read_bytes().splitlines() if line.strip()}
    assert {command["command_id"] for command in naive} == engine_ids


def test_bytewax_native_runs(chain_file: Path) -> None:
    result = run_bytewax_native(chain_file)
    assert result.events == len(chain_file.read_bytes().splitlines()) > 0
    assert run_bytewax_native(chain_file, limit_events=100).events == 100


def test_bytewax_native_fires_for_a_lapsed_regular(tmp_path: Path) -> None:
    start = 1_735_725_600_000  # 2025-01-01T10:00:00Z
    visits = [{"event_id": f"v{day}", "customer_id": "regular", "type": "visit",
               "ts": start + day * DAY_MS, "amount": 30.0, "venue_id": "v1"}
              for day in (0, 6, 13, 20)]
    later = {"event_id": "other", "customer_id": "someone_else", "type": "rating",
             "ts": start + 90 * DAY_MS, "stars": 4}
    path = tmp_path / "lapse.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(event) for event in [*visits, later]) + b"\n")

    sent: list[dict[str, Any]] = []
    result = run_bytewax_native(path, holdout=0.0, on_command=sent.append)
    assert result.events == 5
    assert result.commands == len(sent) >= 1
    assert {command["customer_id"] for command in sent} == {"regular"}
    # 70 days after the last visit: entry (day 45), voucher (day 60) and reminder (day 67).
    assert [command["step"] for command in sent] == ["miss_you", "incentive", "last_reminder"]
    assert sent[0]["send_at"] == start + 65 * DAY_MS
