"""Inputs that pass validation but would corrupt results: copies of applied events, absurd
amounts, far-future timestamps. Each is refused with a reason and changes no command."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.app.generator import ChainConfig, generate_events
from engine.flow.runner import RunOptions, RunSummary, run_on
from journeys_dsl.loader import load_journeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JOURNEYS = [str(Path(__file__).resolve().parents[2] / "examples" / "journeys")]
CHAIN = ChainConfig(seed=8, customers=300, days=120, start="2025-01-01")
DAY = 86_400_000


@pytest.fixture(scope="module")
def chain() -> list[dict[str, Any]]:
    return list(generate_events(CHAIN))


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def run(events: Path, out: Path, redis_url: str, prefix: str,
        **options: Any) -> tuple[RunSummary, list[bytes], list[dict[str, Any]]]:
    commands, dead = out.with_suffix(".commands"), out.with_suffix(".dead")
    summary = run_on(redis_url, RunOptions(
        journeys=JOURNEYS, events=str(events), commands=str(commands), dead_letter=str(dead),
        prefix=prefix, **options), load_journeys(JOURNEYS))
    lines = sorted(commands.read_bytes().splitlines()) if commands.exists() else []
    dead_letters = [orjson.loads(line) for line in dead.read_bytes().splitlines()] \
        if dead.exists() else []
    return summary, lines, dead_letters


def test_a_copied_events_file_applies_nothing_twice(
        chain: list[dict[str, Any]], tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    original = write(tmp_path / "events.jsonl", chain)
    _, first, _ = run(original, tmp_path / "first", redis_url, key_prefix)
    assert len(first) > 100
    copy = tmp_path / "renamed" / "events-copy.jsonl"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)
    summary, again, dead = run(copy, tmp_path / "again", redis_url, key_prefix)
    assert again == []
    assert summary.dead_letters == len(dead) == len(chain)
    reasons = {d["reason"].split("'")[0] + d["reason"].split("'")[-1][:30] for d in dead}
    assert all("already applied" in d["reason"] or "duplicate window" in d["reason"]
               for d in dead), reasons


def test_an_event_older_than_the_duplicate_window_is_refused(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    t0 = 1_735_725_600_000  # 2025-01-01 10:00 UTC

    def visit(event_id: str, day: int) -> dict[str, Any]:
        return {"event_id": event_id, "customer_id": "ann", "type": "visit",
                "ts": t0 + day * DAY, "venue_id": "v1", "amount": 30}

    write(tmp_path / "a.jsonl", [visit("a1", 0), visit("a2", 10), visit("a3", 40)])
    run(tmp_path / "a.jsonl", tmp_path / "a", redis_url, key_prefix,
        max_skew_ms=60 * DAY)
    # another source: an id already applied, one too old to tell, one late but inside
    write(tmp_path / "b.jsonl", [visit("a3", 40), visit("b1", 5), visit("b2", 20)])
    summary, _, dead = run(tmp_path / "b.jsonl", tmp_path / "b", redis_url, key_prefix,
                           dedup_window_ms=30 * DAY)
    reasons = {orjson.loads(d["raw"])["event_id"]: d["reason"] for d in dead}
    assert set(reasons) == {"a3", "b1"}
    assert "already applied" in reasons["a3"]
    assert "older than the duplicate window" in reasons["b1"] and "5.0 days" in reasons["b1"]
    assert summary.dead_letters == 2


def test_an_absurd_amount_is_refused_and_changes_no_command(
        chain: list[dict[str, Any]], tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    _, clean, _ = run(write(tmp_path / "clean.jsonl", chain), tmp_path / "clean", redis_url,
                      f"{key_prefix}-clean")
    poisoned = list(chain)
    middle = len(chain) // 2
    outlier = dict(next(e for e in chain[middle:] if e["type"] == "visit"))
    outlier.update(event_id="outlier", customer_id="mistyped", amount=1e300)
    poisoned.insert(middle, outlier)
    _, got, dead = run(write(tmp_path / "poisoned.jsonl", poisoned), tmp_path / "poisoned",
                       redis_url, f"{key_prefix}-poisoned")
    assert [d["reason"] for d in dead] == [
        "'amount' 1e+300 is above the limit of 100,000 (--max-amount sets it)"]
    assert got == clean


def test_a_far_future_event_is_refused_and_moves_no_clock(
        chain: list[dict[str, Any]], tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    _, clean, _ = run(write(tmp_path / "clean.jsonl", chain), tmp_path / "clean", redis_url,
                      f"{key_prefix}-clean")
    middle = len(chain) // 3
    base = chain[middle]
    future = {"event_id": "future", "customer_id": base["customer_id"], "type": "rating",
              "ts": orjson.loads(orjson.dumps(base))["ts"], "stars": 5}
    # the same rating dated 300 days later than the events around it
    from engine.core.events import parse_timestamp
    future["ts"] = parse_timestamp(base["ts"])[0] + 300 * DAY
    _, got, dead = run(write(tmp_path / "future.jsonl", [*chain[:middle], future,
                                                         *chain[middle:]]),
                       tmp_path / "future", redis_url, f"{key_prefix}-future")
    assert len(dead) == 1 and "days ahead of the stream's clock" in dead[0]["reason"]
    assert "allowed skew 7 days" in dead[0]["reason"]
    assert got == clean
