"""Command line for the chain event generator: `python -m benchmarks.generator --help`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from benchmarks.generator import TS_FORMATS, ChainConfig, generate_events, write_stream


def _parser() -> argparse.ArgumentParser:
    defaults = ChainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generator",
        description="Write a seeded venue chain's events as JSON lines, in event-time order.",
    )
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--venues", type=int, default=defaults.venues)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--start", default=defaults.start, help="first day, e.g. 2025-01-01")
    parser.add_argument("--ts-format", choices=TS_FORMATS, default=defaults.ts_format)
    parser.add_argument("--out", default="-", help="output file, or - for stdout (default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate events to --out and report the count and rate on stderr."""
    args = _parser().parse_args(argv)
    config = ChainConfig(
        seed=args.seed,
        customers=args.customers,
        venues=args.venues,
        days=args.days,
        start=args.start,
        ts_format=args.ts_format,
    )
    began = time.perf_counter()
    events = generate_events(config)
    if args.out == "-":
        count = write_stream(events, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with open(args.out, "wb", buffering=1 << 20) as out:
            count = write_stream(events, out)
    elapsed = time.perf_counter() - began
    rate = count / elapsed if elapsed > 0 else float("inf")
    print(f"{count} events in {elapsed:.2f}s ({rate:,.0f} events/s) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
