"""Smoke runs of the timer-scaling, live-latency and scale benchmarks on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from benchmarks.latency_bench import live_latency
from benchmarks.scale_bench import scale_run
from benchmarks.timers_bench import timer_scaling
from engine.app.generator import ChainConfig, write_jsonl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"


def _keys_matching(url: str, pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(match=pattern, count=10_000))
    finally:
        client.close()


@pytest.mark.integration
def test_timer_scaling_smoke(redis_url: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=7, customers=100, days=60), events)
    before = set(_keys_matching(redis_url, "*tb-*"))

    rows = timer_scaling(events, [str(EXAMPLES)], redis_url, (0, 2000), shards=4)

    assert [row.pending for row in rows] == [0, 2000]
    assert all(row.events_per_s > 0 for row in rows)
    assert rows[0].ratio == pytest.approx(1.0)
    assert rows[1].bytes_per_timer > 0
    # The preloaded customers are never due: the real events give the same commands.
    assert rows[0].commands == rows[1].commands
    assert rows[0].events == rows[1].events
    assert set(_keys_matching(redis_url, "*tb-*")) <= before


@pytest.mark.integration
def test_live_latency_smoke(redis_url: str, tmp_path: Path) -> None:
    before = set(_keys_matching(redis_url, "*lb-*"))

    row = live_latency(tmp_path / "latency", redis_url, rate=200, seconds=1.5)

    assert row.events == 300
    assert row.commands == row.events
    assert 0 < row.p50_ms <= row.p99_ms <= row.max_ms
    assert row.achieved_rate > 100
    assert set(_keys_matching(redis_url, "*lb-*")) <= before


def test_the_decode_limit_counts_every_line_and_leads_the_table(tmp_path: Path) -> None:
    from benchmarks.suite import Row, SuiteResult, decode_limit, format_table

    events = tmp_path / "events.jsonl"
    count = write_jsonl(ChainConfig(seed=2, customers=20, days=10), events)
    limit = decode_limit(events)
    assert limit.events == count and limit.events_per_s > 0
    engine = Row("engine, 1 process", count, limit.seconds * 4)
    table = format_table(SuiteResult([limit, engine]))
    header, _, first, second = table.splitlines()[:4]
    assert "vs decode limit" in header
    assert first.startswith("decode limit") and "1.00x" in first
    assert "0.25x" in second


def test_delivery_benchmark_counts_what_the_receiver_got(tmp_path: Path) -> None:
    from benchmarks.delivery_bench import kill_and_restart, throughput

    sent = throughput(tmp_path / "throughput", 300)
    assert (sent.received, sent.distinct, sent.lost, sent.repeated_requests) == (300, 300, 0, 0)
    assert sent.per_second > 0 and sent.worker_cpu_s > 0

    resent = kill_and_restart(tmp_path / "resend", 1500)
    assert resent.lost == 0 and resent.distinct == 1500 and resent.unknown == 0
    assert resent.repeated_requests <= 64  # at most the sends in flight when it was killed
    assert resent.duplicate_messages == 0  # the receiver honours Idempotency-Key

    given_up = kill_and_restart(tmp_path / "give-up", 1500, after_crash="give_up")
    assert given_up.repeated_requests == 0 and given_up.lost == 0
    assert given_up.unknown <= 64


@pytest.mark.integration
def test_scale_run_smoke(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    count = write_jsonl(ChainConfig(seed=7, customers=200, days=40), events)
    figures = scale_run(events, 200, redis_url, key_prefix, tmp_path, processes=2)
    assert figures.events == count and figures.commands > 0
    assert figures.wall_s > 0 and figures.redis_bytes_per_customer > 0
    assert not _keys_matching(redis_url, f"*{key_prefix}*")
