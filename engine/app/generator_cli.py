"""Command line for the chain event generator: `journeys generate`, also run as
`python -m engine.app.generator`. Both read the options `add_generator_options` defines."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from engine.app.cli_parser import USAGE_MISTAKE, CommandParser, add_version_option
from engine.app.generator import (
    TS_FORMATS,
    ChainConfig,
    GeneratorConfigError,
    generate_events,
    write_stream,
)
from engine.app.mall_generator import MallConfig, generate_mall_events

DESCRIPTION = "Write a seeded venue chain's events as JSON lines, in event-time order."


def add_generator_options(parser: argparse.ArgumentParser) -> None:
    """The generator's options, with their defaults (those of `ChainConfig`)."""
    defaults = ChainConfig()
    parser.add_argument("--customers", type=int, default=defaults.customers, metavar="N",
                        help=f"customers in the chain (default {defaults.customers})")
    parser.add_argument("--days", type=int, default=defaults.days, metavar="N",
                        help=f"days of history from --start (default {defaults.days})")
    parser.add_argument("--venues", type=int, default=defaults.venues, metavar="N",
                        help=f"venues in the chain, 1 to 999 (default {defaults.venues})")
    parser.add_argument("--seed", type=int, default=defaults.seed, metavar="N",
                        help="random seed: the same seed and options write the same bytes "
                             f"(default {defaults.seed})")
    parser.add_argument("--start", default=defaults.start, metavar="DATE",
                        help=f"first day, YYYY-MM-DD (default {defaults.start})")
    parser.add_argument("--ts-format", choices=TS_FORMATS, default=defaults.ts_format,
                        help="event times as ISO-8601 with the venue's offset, or epoch "
                             f"milliseconds (default {defaults.ts_format})")
    parser.add_argument("--out", default="-", metavar="FILE",
                        help="file to write, or - for stdout (default -)")
    parser.add_argument("--kind", choices=("chain", "mall"), default="chain",
                        help="chain: a restaurant chain's visits; mall: a shopping mall's "
                             "presence sightings (wallet passes, Wi-Fi, beacons) and some "
                             "purchases, --days of history ending with its busiest day, "
                             "--customers guests, --venues partner shops (default chain)")


def generate_command(args: argparse.Namespace, stderr: TextIO) -> int:
    """Generate the events the parsed options describe to `args.out`; report the count and
    rate on `stderr`. Raises GeneratorConfigError for an option out of range and OSError for
    an output that cannot be written, before writing anything."""
    began = time.perf_counter()
    events: Iterator[dict[str, Any]]
    if getattr(args, "kind", "chain") == "mall":
        mall = MallConfig(seed=args.seed, guests=args.customers, shops=args.venues,
                          days=args.days, start=args.start, ts_format=args.ts_format)
        events = iter(generate_mall_events(mall))
    else:
        config = ChainConfig(seed=args.seed, customers=args.customers, venues=args.venues,
                             days=args.days, start=args.start, ts_format=args.ts_format)
        events = generate_events(config)
    if args.out == "-":
        count = write_stream(events, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with open(args.out, "wb", buffering=1 << 20) as out:
            count = write_stream(events, out)
    elapsed = time.perf_counter() - began
    rate = count / elapsed if elapsed > 0 else float("inf")
    print(f"{count} events in {elapsed:.2f}s ({rate:,.0f} events/s) -> {args.out}", file=stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m engine.app.generator`: the same options and output as `journeys generate`."""
    parser = CommandParser(prog="python -m engine.app.generator", description=DESCRIPTION)
    add_generator_options(parser)
    add_version_option(parser)
    args = parser.parse_args(argv)
    try:
        return generate_command(args, sys.stderr)
    except GeneratorConfigError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"{parser.prog}: {exc.filename}: {exc.strerror}", file=sys.stderr)
    return USAGE_MISTAKE


if __name__ == "__main__":
    raise SystemExit(main())
