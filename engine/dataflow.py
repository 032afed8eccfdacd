"""The Bytewax dataflow: source -> router -> shard processor -> sinks. Wiring only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from connectors.jsonl import CommandSink, JsonlSink, JsonlSource, encode_dead_letter
from connectors.kafka import KafkaBatch, KafkaSource, source_id_of
from connectors.kafka_sinks import KafkaCommandSink, KafkaDeadLetterSink
from engine.catalog import Catalog
from engine.line_marks import load_line_mark, save_line_mark
from engine.processor import ShardProcessor
from engine.records import BatchResult, DeadLetter, LineMark, ShardBatch
from engine.redis_client import connect
from engine.routing import DEAD_LETTER_KEY, BatchRouter, ClockMode, RunCounters
from engine.run_defaults import (
    DEFAULT_BATCH_LINES,
    DEFAULT_CACHE_CUSTOMERS,
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_MAX_AMOUNT,
    TIMELINE_KEPT,
)
from engine.scoring import DEFAULT_MODEL, ScoreModel
from engine.shard_keys import shard_keys
from engine.store import acknowledge_outbox
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel


@dataclass
class KafkaFlow:
    """The Kafka side of a run: client settings, topics, and where each partition starts."""

    settings: dict[str, str]
    events_topic: str
    commands_topic: str
    dead_letter_topic: str
    starts: dict[int, int] = field(default_factory=dict)
    """Partition -> first offset to read (-1: the beginning)."""
    until_end: bool = False


@dataclass
class FlowConfig:
    """What a run reads, where its state lives, and where its outputs go."""

    events_path: str
    commands_path: str
    dead_letter_path: str
    redis_url: str
    source_id: str
    prefix: str = "je"
    shards: int = 8
    clock: ClockMode = "event"
    start_position: int = 0
    batch_lines: int = DEFAULT_BATCH_LINES
    tail: bool = False
    tick_s: float = 1.0
    until_ms: int | None = None
    idle_exit_s: float | None = None
    kafka: KafkaFlow | None = None
    """Read and write Kafka topics instead of files; shards = the events topic's partitions."""
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
            keys: Sequence[str]) -> BatchRouter:
    return BatchRouter(config.shards, source_id, config.clock, config.max_skew_ms,
                       counters=counters, keys=keys, max_amount=config.max_amount)


def _acknowledger(config: FlowConfig) -> Callable[[dict[int, int]], None]:
    """Drops from each shard's outbox the commands the sink has written (shard -> count)."""
    client = connect(config.redis_url)

    def acknowledge(written: dict[int, int]) -> None:
        acknowledge_outbox(client, config.prefix, written)

    return acknowledge


def build_flow(config: FlowConfig, catalog: Catalog, counters: RunCounters,
               score_model: ScoreModel = DEFAULT_MODEL,
               customer_model: CustomerModel = EMPTY_MODEL,
               policies: Policies = NO_POLICIES) -> Dataflow:
    """A dataflow that runs `catalog`'s journeys over the configured events."""
    if config.kafka is not None:
        return build_kafka_flow(config, config.kafka, catalog, counters, score_model,
                                customer_model, policies)
    keys = shard_keys(config.shards, config.workers)
    router = _router(config, config.source_id, counters, keys)
    client = connect(config.redis_url)
    processor = ShardProcessor(client, catalog, prefix=config.prefix,
                               source_id=config.source_id, shards=config.shards,
                               score_model=score_model, customer_model=customer_model,
                               policies=policies, dedup_window_ms=config.dedup_window_ms,
                               cache_customers=config.cache_customers,
                               timeline_kept=config.timeline_kept)

    def dead_of(item: tuple[str, BatchResult]) -> list[tuple[str, bytes]]:
        counters.add(dead=len(item[1].dead_letters))
        return [(DEAD_LETTER_KEY, encode_dead_letter(d)) for d in item[1].dead_letters]

    def encode_dead(item: tuple[str, Any]) -> tuple[str, bytes]:
        dead: DeadLetter = item[1]
        return DEAD_LETTER_KEY, encode_dead_letter(dead)

    def keep_line_mark(mark: LineMark) -> None:
        save_line_mark(client, config.prefix, config.source_id, mark)

    flow = Dataflow("journeys")
    raw = op.input("events", flow, JsonlSource(
        config.events_path, start=config.start_position, batch_lines=config.batch_lines,
        tail=config.tail, tick_s=config.tick_s, until_ms=config.until_ms,
        idle_exit_s=config.idle_exit_s, on_blank=lambda n: counters.add(blank=n),
        line_mark=load_line_mark(client, config.prefix, config.source_id),
        on_line_mark=keep_line_mark))
    routed = op.flat_map("route", raw, router.route)
    split = op.branch("split_dead", routed, lambda item: item[0] == DEAD_LETTER_KEY)
    results = _process_step(split.falses, processor)
    commands = op.flat_map("commands", results, _commands_of)
    late_dead = op.flat_map("late_dead", results, dead_of)
    early_dead = op.map("encode_dead", split.trues, encode_dead)
    dead = op.merge("dead", early_dead, late_dead)
    op.output("commands_out", commands, CommandSink(
        config.commands_path, _acknowledger(config),
        on_write=lambda n: counters.add(commands=n)))
    op.output("dead_out", dead, JsonlSink(config.dead_letter_path))
    return flow


def build_kafka_flow(config: FlowConfig, kafka: KafkaFlow, catalog: Catalog,
                     counters: RunCounters, score_model: ScoreModel = DEFAULT_MODEL,
                     customer_model: CustomerModel = EMPTY_MODEL,
                     policies: Policies = NO_POLICIES) -> Dataflow:
    """Kafka events topic -> shard processors -> commands and dead-letter topics.

    Each Kafka partition has its own router (its own event clock); its offsets are stored
    under its own source id in every shard. Each shard has one processor (its outbox is
    recovered once), told the source id of each batch; a shard is owned by one worker.
    On the event clock a shard's clock is the slowest of the partitions still reading (see
    engine.processor), so a partition running ahead never fires the timers of customers it
    does not carry.
    """
    source_ids = {partition: source_id_of(kafka.events_topic, partition)
                  for partition in kafka.starts}
    keys = shard_keys(config.shards, config.workers)
    routers = {sid: _router(config, sid, counters, keys) for sid in source_ids.values()}
    processor = ShardProcessor(
        connect(config.redis_url), catalog, prefix=config.prefix,
        source_id=source_id_of(kafka.events_topic, 0), shards=config.shards,
        score_model=score_model, customer_model=customer_model, policies=policies,
        dedup_window_ms=config.dedup_window_ms, cache_customers=config.cache_customers,
        timeline_kept=config.timeline_kept)

    def route(raw: KafkaBatch) -> list[tuple[str, Any]]:
        routed = routers[raw.source_id].route(raw)
        for _, item in routed:
            if isinstance(item, ShardBatch):
                item.source_id = raw.source_id
        return routed

    def dead_of(item: tuple[str, BatchResult]) -> list[tuple[str, DeadLetter]]:
        counters.add(dead=len(item[1].dead_letters))
        return [(DEAD_LETTER_KEY, d) for d in item[1].dead_letters]

    flow = Dataflow("journeys")
    raw = op.input("events", flow, KafkaSource(
        kafka.settings, kafka.events_topic, kafka.starts, batch_size=config.batch_lines,
        until_end=kafka.until_end, tick_s=config.tick_s, until_ms=config.until_ms,
        on_lag=processor.telemetry.record_lag))
    routed = op.flat_map("route", raw, route)
    split = op.branch("split_dead", routed, lambda item: item[0] == DEAD_LETTER_KEY)
    results = _process_step(split.falses, processor)
    commands = op.flat_map("commands", results, _commands_of)
    late_dead = op.flat_map("late_dead", results, dead_of)
    dead = op.merge("dead", split.trues, late_dead)
    op.output("commands_out", commands, KafkaCommandSink(
        kafka.settings, kafka.commands_topic, _acknowledger(config),
        on_write=lambda n: counters.add(commands=n)))
    op.output("dead_out", dead, KafkaDeadLetterSink(kafka.settings, kafka.dead_letter_topic))
    return flow
