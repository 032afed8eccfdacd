"""Engine throughput with many pending timers in Redis.

For each count N, `timer_scaling` preloads N synthetic customers (`p0000001`, ...) each with
one armed timer due a year after the events file's last event, so none ever fires, then runs
the engine over the file on the event clock and measures events/s. The rows show whether a
large timers sorted set slows the batches down, and how much memory the timers take.

`python -m benchmarks.timers_bench --redis URL [--pending 0 1000000 5000000]` prints a table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis

from engine.core.events import parse_timestamp
from engine.core.state import CustomerState
from engine.core.timeutil import DAY_MS
from engine.flow.routing import shard_of
from engine.flow.runner import RunOptions, run_on
from engine.storage.redis_client import connect
from engine.storage.store import delete_state, shard_tag
from journeys_dsl.loader import load_journeys

PRELOAD_CHUNK = 10_000
TAIL_BYTES = 1 << 16
PRELOAD_JOURNEY = "lost_regular"


@dataclass(frozen=True)
class TimerRow:
    """One run: N pending timers preloaded, then the events file replayed."""

    pending: int
    preload_s: float
    events_per_s: float
    ratio: float
    """events_per_s relative to the row with no pending timers (or the first row)."""
    used_memory: int
    """Redis `used_memory` right after the preload, in bytes."""
    bytes_per_timer: float
    """Growth of `used_memory` during the preload per pending timer (0 when N is 0)."""
    events: int
    commands: int
    run_s: float


def last_event_ms(events_path: Path) -> int:
    """The latest `ts` among the last lines of the file (events are in time order)."""
    with events_path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read()
    lines = [line for line in tail.splitlines() if line.strip()]
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line may be cut
    latest = None
    for line in lines:
        ts, _ = parse_timestamp(orjson.loads(line).get("ts"))
        latest = ts if latest is None else max(latest, ts)
    if latest is None:
        raise ValueError(f"{events_path}: no events")
    return latest


def preload_timers(client: redis.Redis, prefix: str, shards: int, count: int,
                   due_ms: int) -> None:
    """Write `count` customers with one armed timer each, pipelined in chunks."""
    # The serialised state does not contain the customer id, so one payload serves all.
    payload = CustomerState("p", armed={PRELOAD_JOURNEY: due_ms}).to_bytes()
    tags = [shard_tag(prefix, shard) for shard in range(shards)]
    for start in range(0, count, PRELOAD_CHUNK):
        values: list[dict[str, bytes]] = [{} for _ in range(shards)]
        dues: list[dict[str, int]] = [{} for _ in range(shards)]
        for index in range(start + 1, min(start + PRELOAD_CHUNK, count) + 1):
            customer = f"p{index:07d}"
            shard = shard_of(customer, shards)
            values[shard][f"{tags[shard]}:c:{customer}"] = payload
            dues[shard][customer] = due_ms
        pipe = client.pipeline(transaction=False)
        for shard in range(shards):
            if values[shard]:
                pipe.mset(values[shard])
                pipe.zadd(f"{tags[shard]}:timers", dues[shard])
        pipe.execute()


def used_memory(client: redis.Redis) -> int:
    info: dict[str, int] = client.info("memory")
    return int(info["used_memory"])


def timer_scaling(events_path: Path, journeys: list[str], redis_url: str,
                  pending: Sequence[int], *, shards: int = 8) -> list[TimerRow]:
    """Events/s of a replay of `events_path` with each count of pending timers preloaded."""
    plans = load_journeys(journeys)
    due_ms = last_event_ms(events_path) + 365 * DAY_MS
    client = connect(redis_url)
    measured: list[tuple[int, float, float, int, float, int, int, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="timers-bench-") as scratch:
            for count in pending:
                prefix = f"tb-{uuid.uuid4().hex[:10]}"
                try:
                    client.hset(f"{prefix}:meta", "shards", shards)
                    before = used_memory(client)
                    began = time.perf_counter()
                    preload_timers(client, prefix, shards, count, due_ms)
                    preload_s = time.perf_counter() - began
                    after = used_memory(client)
                    options = RunOptions(
                        journeys=journeys, events=str(events_path),
                        commands=str(Path(scratch) / f"commands-{count}.jsonl"),
                        dead_letter=str(Path(scratch) / f"dead-{count}.jsonl"),
                        redis_url=redis_url, clock="event", shards=shards, prefix=prefix,
                        source_id=f"timers-bench-{prefix}")
                    summary = run_on(redis_url, options, plans)
                    per_timer = (after - before) / count if count else 0.0
                    measured.append((count, preload_s, summary.events_per_s, after, per_timer,
                                     summary.events_read, summary.commands, summary.seconds))
                finally:
                    delete_state(client, prefix)
    finally:
        client.close()
    if not measured:
        return []
    zero = next((m for m in measured if m[0] == 0), measured[0])
    baseline = zero[2]
    return [TimerRow(count, preload_s, eps, ratio=eps / baseline if baseline else 0.0,
                     used_memory=mem, bytes_per_timer=per_timer, events=events,
                     commands=commands, run_s=run_s)
            for count, preload_s, eps, mem, per_timer, events, commands, run_s in measured]


def main(argv: Sequence[str] | None = None) -> None:
    from engine.app.generator import ChainConfig, write_jsonl

    examples = Path(__file__).resolve().parents[1] / "examples" / "journeys"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--events", help="events file (default: a generated chain)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--journeys", nargs="+", default=[str(examples)])
    parser.add_argument("--pending", type=int, nargs="+", default=[0, 1_000_000, 5_000_000])
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="timers-bench-events-") as scratch:
        path = Path(args.events) if args.events else Path(scratch) / "events.jsonl"
        if not args.events:
            write_jsonl(ChainConfig(seed=7, customers=args.customers, days=args.days), path)
        rows = timer_scaling(path, args.journeys, args.redis, args.pending, shards=args.shards)
    print(f"{'pending':>10} {'preload s':>10} {'events/s':>10} {'ratio':>6} "
          f"{'used MiB':>9} {'B/timer':>8} {'events':>8} {'commands':>9}")
    for row in rows:
        print(f"{row.pending:>10} {row.preload_s:>10.1f} {row.events_per_s:>10.0f} "
              f"{row.ratio:>6.2f} {row.used_memory / 2**20:>9.1f} {row.bytes_per_timer:>8.0f} "
              f"{row.events:>8} {row.commands:>9}")


if __name__ == "__main__":
    main()
