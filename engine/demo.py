"""`journeys demo`: a generated venue chain's year through the ten reference journeys."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.generator import ChainConfig, write_jsonl
from benchmarks.responses import voucher_responses
from engine.embedded_redis import EmbeddedRedis
from engine.redis_client import connect
from engine.runner import RunOptions, RunSummary, redis_endpoint, run_on
from engine.store import SUGGESTED_TIMELINE, read_stats
from journeys_dsl.loader import load_journeys
from journeys_dsl.plan import JourneyPlan


@dataclass(frozen=True)
class DemoResult:
    summary: RunSummary
    stats: Counter[str]
    plans: list[JourneyPlan]
    events: int


def run_demo(chain: ChainConfig, journeys: Path, out: Path, *, redemption_share: float,
             redis_url: str | None, state_dir: str | None, shards: int,
             prefix: str, policies: str | None = None) -> DemoResult:
    """Generate the chain, run the journeys, and return the run's counters.

    With a redemption share, a first run on a private embedded Redis finds the vouchers
    the journeys issue; the chain is generated again with customers redeeming that share
    of them on their next visit within validity, and the second run is the one reported.
    """
    plans = load_journeys([str(journeys)])
    events = out / "events.jsonl"
    count = write_jsonl(chain, events)
    if redemption_share > 0:
        probe = out / "probe-commands.jsonl"
        probe.unlink(missing_ok=True)
        with EmbeddedRedis() as server:
            run_on(server.url, _options(journeys, events, probe, out, shards, prefix,
                                        policies), plans)
        commands = (orjson.loads(line) for line in probe.read_bytes().splitlines())
        count = write_jsonl(chain, events, voucher_responses(commands, redemption_share,
                                                             chain.seed))
        probe.unlink()
    commands_path = out / "commands.jsonl"
    commands_path.unlink(missing_ok=True)
    options = _options(journeys, events, commands_path, out, shards, prefix, policies)
    with redis_endpoint(redis_url, state_dir) as url:
        summary = run_on(url, options, plans)
        stats = read_stats(connect(url), prefix, shards)
    return DemoResult(summary, stats, plans, count)


def _options(journeys: Path, events: Path, commands: Path, out: Path, shards: int,
             prefix: str, policies: str | None) -> RunOptions:
    return RunOptions(journeys=[str(journeys)], events=str(events), commands=str(commands),
                      dead_letter=str(out / "dead-letter.jsonl"), shards=shards, prefix=prefix,
                      source_id=f"demo:{events.name}", policies=policies,
                      timeline_kept=SUGGESTED_TIMELINE)


def describe(chain: ChainConfig, redemption_share: float) -> str:
    text = (f"a chain of {chain.venues} venues, {chain.customers} customers over "
            f"{chain.days} days (seed {chain.seed})")
    if redemption_share > 0:
        text += (f"; customers redeem {redemption_share:.0%} of the vouchers they get, at "
                 "their next visit within validity")
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `journeys demo`")
