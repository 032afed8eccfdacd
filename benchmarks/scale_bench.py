"""The scale row: a chain of a million customers, about ten million events, timed end to end.

`python -m benchmarks --scale` adds it to the full table; alone,
`python -m benchmarks.scale_bench --redis URL [--customers N] [--days D] [--processes P]`
prints it. The events file is generated first (not timed); the row's time runs from
starting the engine's processes to the last one's exit, start-up and the final commit
included, which is what a backtest of that history costs its user.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import redis

from benchmarks.suite import jsonl_source, run_engine_processes
from engine.app.generator import ChainConfig, write_jsonl
from engine.storage.store import delete_matching

SCALE_CUSTOMERS = 1_000_000
SCALE_DAYS = 186
"""About ten million events from a million customers: the generated chain's customers send
about 20 events a year (12.0 million events in 216 days; its first ten million end on the
186th day)."""


@dataclass(frozen=True)
class ScaleFigures:
    """What one scale run measured."""

    customers: int
    events: int
    commands: int
    processes: int
    wall_s: float
    """From starting the processes to the last one's exit."""
    redis_bytes_per_customer: float
    """MEMORY USAGE of the run's keys (states, timers, aggregates) per customer."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0


def scale_run(events: Path, customers: int, redis_url: str, prefix: str, work: Path,
              processes: int = 2) -> ScaleFigures:
    """`journeys run` in `processes` processes over `events`, timed end to end."""
    client = redis.Redis.from_url(redis_url)
    run = run_engine_processes(jsonl_source(events, work, prefix), redis_url, prefix,
                               processes)
    used = _bytes_under(client, prefix)
    delete_matching(client, f"*{prefix}*")
    client.close()
    return ScaleFigures(customers, run.events, run.commands, processes, run.wall_s,
                        used / max(customers, 1))


def _bytes_under(client: redis.Redis, prefix: str) -> int:
    """The Redis memory of every key of the run (states, timers, aggregates, outbox).

    Summed per key with MEMORY USAGE, so other clients of the same server, writing or
    deleting their own keys meanwhile, do not change the figure (used_memory growth did).
    """
    total = 0
    keys = client.scan_iter(match=f"*{prefix}*", count=1000)
    while batch := list(islice(keys, 1000)):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        total += sum(int(size or 0) for size in pipe.execute())
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_bench",
                                     description=__doc__)
    parser.add_argument("--redis", required=True, metavar="URL", help="Redis URL")
    parser.add_argument("--customers", type=int, default=SCALE_CUSTOMERS, metavar="N",
                        help=f"customers in the chain (default {SCALE_CUSTOMERS:,})")
    parser.add_argument("--days", type=int, default=SCALE_DAYS, metavar="N",
                        help=f"days of history (default {SCALE_DAYS})")
    parser.add_argument("--processes", type=int, default=2, metavar="N",
                        help="engine processes (default 2)")
    parser.add_argument("--work", default=".", metavar="DIR",
                        help="folder for the events and commands files (default: here)")
    parser.add_argument("--events", metavar="FILE",
                        help="an events file generated before for the same chain (default: "
                             "generate one in --work)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    events = Path(args.events) if args.events else work / "scale-events.jsonl"
    if not args.events:
        began = time.perf_counter()
        count = write_jsonl(ChainConfig(seed=7, customers=args.customers, days=args.days),
                            events)
        print(f"generated {count:,} events in {time.perf_counter() - began:.0f}s",
              file=sys.stderr)
    figures = scale_run(events, args.customers, args.redis, f"scale{time.time_ns()}", work,
                        args.processes)
    print(f"{figures.events:,} events of {figures.customers:,} customers, "
          f"{figures.processes} processes: {figures.wall_s:,.0f}s end to end "
          f"({figures.events_per_s:,.0f} events/s), {figures.commands:,} commands, "
          f"{figures.redis_bytes_per_customer:,.0f} B of Redis per customer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
