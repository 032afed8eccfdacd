"""The Bytewax dataflow: any source -> routers -> shard processors -> any sinks. Wiring
only: sources and sinks plug in through connectors.flow_source and connectors.flow_sink."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from connectors.flow_sink import CommandSink, DeadLetterSink
from connectors.flow_source import EventSource
from engine.core.catalog import Catalog
from engine.core.records import BatchResult, DeadLetter, RawBatch, ShardBatch
from engine.flow.identity import LinkFeed
from engine.flow.processor import ShardProcessor
from engine.flow.routing import DEAD_LETTER_KEY, BatchRouter, ClockMode, RunCounters
from engine.flow.telemetry import telemetry_for
from engine.run_defaults import (
    DEFAULT_CACHE_CUSTOMERS,
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_MAX_AMOUNT,
    TIMELINE_KEPT,
)
from engine.scoring.model import DEFAULT_MODEL, ScoreModel
from engine.storage.redis_client import connect
from engine.storage.shard_keys import shard_keys
from engine.storage.store import acknowledge_outbox
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel


@dataclass
class FlowConfig:
    """Where a run's state lives and how its shards apply events; what it reads and writes
    are the source and sinks given to `build_flow`."""

    redis_url: str
    prefix: str = "je"
    shards: int = 8
    clock: ClockMode = "event"
    workers: int = 1
    """Workers of the whole run (all processes): the shards are spread evenly over them."""
    max_skew_ms: int | None = None
    """How far ahead of its source's clock an event may be (None: the clock's default)."""
    max_amount: float = DEFAULT_MAX_AMOUNT
    """The largest visit amount accepted."""
    dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS
    """How long, in a customer's event time, an applied event id is refused again."""
    cache_customers: int = DEFAULT_CACHE_CUSTOMERS
    """Committed customer states the process keeps decoded in memory."""
    timeline_kept: int = TIMELINE_KEPT
    """Events and messages kept per customer for the console (0: no timeline)."""
    telemetry: str | None = None
    """`console`, `otlp` or `none`; None: as JOURNEYS_TELEMETRY says."""


def _commands_of(item: tuple[str, BatchResult]) -> list[tuple[str, tuple[str, bytes]]]:
    """A result's command lines as (shard, line) items for the commands sink."""
    return [(item[0], (str(shard), line)) for shard, line in item[1].outbox]


class _ShardLogic(StatefulBatchLogic[ShardBatch, BatchResult, None]):
    """Hands a shard's batches to the worker's processor, asks it again while its shards
    wait for other processes', and at the end of the input lets it apply what they hold."""

    def __init__(self, processor: ShardProcessor) -> None:
        self._processor = processor

    def on_batch(self, values: list[ShardBatch]) -> tuple[Iterable[BatchResult], bool]:
        return [self._processor.process(batch) for batch in values], self.RETAIN

    def on_notify(self) -> tuple[Iterable[BatchResult], bool]:
        return [self._processor.poll()], self.RETAIN

    def on_eof(self) -> tuple[Iterable[BatchResult], bool]:
        return [self._processor.finish()], self.DISCARD

    def notify_at(self) -> datetime | None:
        """Soon, while the worker's shards wait for shards of other processes."""
        if self._processor.waiting():
            return datetime.now(UTC) + timedelta(seconds=self._processor.poll_interval())
        return None

    def snapshot(self) -> None:
        return None


def _process_step(stream: Any, processor: ShardProcessor) -> Any:
    """The shard processor as a keyed step of the dataflow."""
    return op.stateful_batch("process", stream, lambda resume: _ShardLogic(processor))


def _router(config: FlowConfig, source_id: str, counters: RunCounters,
            keys: Sequence[str], links: LinkFeed) -> BatchRouter:
    return BatchRouter(config.shards, source_id, config.clock, config.max_skew_ms,
                       counters=counters, keys=keys, max_amount=config.max_amount,
                       links=links.entries)


def _acknowledger(config: FlowConfig) -> Callable[[dict[int, int]], None]:
    """Drops from each shard's outbox the commands the sink has written (shard -> count)."""
    client = connect(config.redis_url)

    def acknowledge(written: dict[int, int]) -> None:
        acknowledge_outbox(client, config.prefix, written)

    return acknowledge


def build_flow(source: EventSource, commands_sink: CommandSink,
               dead_letter_sink: DeadLetterSink, config: FlowConfig, catalog: Catalog,
               counters: RunCounters, score_model: ScoreModel = DEFAULT_MODEL,
               customer_model: CustomerModel = EMPTY_MODEL,
               policies: Policies = NO_POLICIES) -> Dataflow:
    """`source` -> routers -> shard processors -> `commands_sink` and `dead_letter_sink`.

    Each partition of the source has its own router (its own event clock); its positions
    are stored under its own source id in every shard, with the state. Each shard has one
    processor (its outbox is recovered once), told the source id of each batch; a shard is
    owned by one worker. On the event clock a shard's clock is the slowest of the
    partitions still reading (see engine.flow.processor), so a partition running ahead never
    fires the timers of customers it does not carry. The commands sink acknowledges what it
    wrote to the shards' outboxes.
    """
    source_ids = list(source.source_ids().values())
    keys = shard_keys(config.shards, config.workers)
    links = LinkFeed(connect(config.redis_url), config.prefix, config.shards)
    routers = {sid: _router(config, sid, counters, keys, links) for sid in source_ids}
    processor = ShardProcessor(
        connect(config.redis_url), catalog, prefix=config.prefix, source_id=source_ids[0],
        shards=config.shards, score_model=score_model, customer_model=customer_model,
        policies=policies, dedup_window_ms=config.dedup_window_ms,
        cache_customers=config.cache_customers, timeline_kept=config.timeline_kept,
        telemetry=telemetry_for(config.telemetry) if config.telemetry is not None else None)
    if source.on_lag is None:
        source.on_lag = processor.telemetry.record_lag
    source.on_start = counters.start
    commands_sink.wire(_acknowledger(config), lambda n: counters.add(commands=n))

    def route(raw: RawBatch) -> list[tuple[str, Any]]:
        routed = routers[raw.source_id].route(raw)
        for _, item in routed:
            if isinstance(item, ShardBatch):
                item.source_id = raw.source_id
        return routed

    def dead_of(item: tuple[str, BatchResult]) -> list[tuple[str, DeadLetter]]:
        counters.add(dead=len(item[1].dead_letters))
        return [(DEAD_LETTER_KEY, d) for d in item[1].dead_letters]

    flow = Dataflow("journeys")
    raw = op.input("events", flow, source)
    routed = op.flat_map("route", raw, route)
    split = op.branch("split_dead", routed, lambda item: item[0] == DEAD_LETTER_KEY)
    results = _process_step(split.falses, processor)
    commands = op.flat_map("commands", results, _commands_of)
    late_dead = op.flat_map("late_dead", results, dead_of)
    dead = op.merge("dead", split.trues, late_dead)
    op.output("commands_out", commands, commands_sink)
    op.output("dead_out", dead, dead_letter_sink)
    return flow
