"""Runs the dataflow once over an events file: the engine behind `journeys run` and `demo`."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from bytewax.run import cli_main

from engine.catalog import Catalog
from engine.dataflow import FlowConfig, build_flow
from engine.embedded_redis import EmbeddedRedis
from engine.routing import ClockMode, RunCounters
from engine.scoring import DEFAULT_MODEL, ScoreModel, load_model
from engine.scoring_kernels import warm_up
from engine.store import check_shard_count, min_applied_position
from engine.versions import sync_versions
from journeys_dsl.loader import load_journeys
from journeys_dsl.plan import JourneyPlan
from journeys_dsl.policies import load_policies
from journeys_dsl.segments import load_segments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """A run of the engine over one events file."""

    journeys: Sequence[str]
    events: str
    segments: str | None = None
    """The segments file; None for the defaults shipped with the engine."""
    scores: str | None = None
    """Score model parameters written by `journeys fit`; None for the defaults."""
    policies: str | None = None
    """Frequency caps, quiet hours and consent; None: no cap, no quiet hours, opt-out."""
    process_id: int | None = None
    """With `addresses`: this process's index in a cluster of dataflow processes."""
    addresses: tuple[str, ...] = ()
    """host:port of every process of the cluster, the same list in each process."""
    commands: str = "-"
    dead_letter: str = "dead-letter.jsonl"
    redis_url: str | None = None
    state_dir: str | None = None
    clock: ClockMode = "event"
    shards: int = 8
    prefix: str = "je"
    source_id: str | None = None
    until_ms: int | None = None
    workers: int = 1
    batch_lines: int = 2000
    tail: bool = False
    tick_s: float = 1.0
    idle_exit_s: float | None = None


@dataclass(frozen=True)
class RunSummary:
    events_read: int
    dead_letters: int
    commands: int
    seconds: float
    journeys: int

    @property
    def events_per_s(self) -> float:
        return self.events_read / self.seconds if self.seconds > 0 else 0.0


@contextlib.contextmanager
def redis_endpoint(url: str | None, state_dir: str | None = None) -> Iterator[str]:
    """The given Redis URL, or an embedded server started for the duration of the block."""
    if url:
        yield url
        return
    with EmbeddedRedis(data_dir=state_dir) as server:
        yield server.url


def run(options: RunOptions, plans: Sequence[JourneyPlan] | None = None,
        score_model: ScoreModel | None = None) -> RunSummary:
    """Run the journeys over the events file and return the run's totals."""
    if plans is None:
        plans = load_journeys(options.journeys)
    with redis_endpoint(options.redis_url, options.state_dir) as url:
        return run_on(url, options, plans, score_model)


def run_on(url: str, options: RunOptions, plans: Sequence[JourneyPlan],
           score_model: ScoreModel | None = None) -> RunSummary:
    """Run against the Redis server at `url`."""
    client = redis.Redis.from_url(url)
    catalog = Catalog(plans)
    check_shard_count(client, options.prefix, options.shards)
    sync_versions(client, options.prefix, catalog)
    source_id = options.source_id or str(Path(options.events).resolve())
    start = max(min_applied_position(client, options.prefix, options.shards, source_id), 0)
    counters = RunCounters()
    config = FlowConfig(
        events_path=options.events, commands_path=options.commands,
        dead_letter_path=options.dead_letter, redis_url=url, source_id=source_id,
        prefix=options.prefix, shards=options.shards, clock=options.clock,
        start_position=start, batch_lines=options.batch_lines, tail=options.tail,
        tick_s=options.tick_s, until_ms=options.until_ms, idle_exit_s=options.idle_exit_s,
    )
    if score_model is None:
        score_model = load_model(options.scores) if options.scores else DEFAULT_MODEL
    warm_up()
    flow = build_flow(config, catalog, counters, score_model, load_segments(options.segments),
                      load_policies(options.policies))
    began = time.perf_counter()
    if options.addresses:
        cli_main(flow, workers_per_process=options.workers, process_id=options.process_id,
                 addresses=list(options.addresses))
    else:
        cli_main(flow, workers_per_process=options.workers)
    seconds = time.perf_counter() - began
    client.close()
    return RunSummary(counters.events_read, counters.dead_letters, counters.commands, seconds,
                      len(catalog.current))
