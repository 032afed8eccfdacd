"""The Bytewax dataflow: source -> router -> shard processor -> sinks. Wiring only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors.jsonl import CommandSink, JsonlSink, JsonlSource, encode_dead_letter
from connectors.kafka import KafkaBatch, KafkaSource, source_id_of
from connectors.kafka_sinks import KafkaCommandSink, KafkaDeadLetterSink
from engine.catalog import Catalog
from engine.processor import BatchResult, DeadLetter, ShardBatch, ShardProcessor
from engine.redis_client import connect
from engine.routing import (
    DEAD_LETTER_KEY,
    DEFAULT_BATCH_LINES,
    BatchRouter,
    ClockMode,
    RunCounters,
)
from engine.scoring import DEFAULT_MODEL, ScoreModel
from engine.shard_keys import shard_keys, shard_of_key
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


def _commands_of(item: tuple[str, BatchResult]) -> list[tuple[str, tuple[str, bytes]]]:
    """A shard batch's command lines as (shard, line) items for the commands sink."""
    shard = str(shard_of_key(item[0]))
    return [(item[0], (shard, line)) for line in item[1].lines]


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
    router = BatchRouter(config.shards, config.source_id, config.clock, counters=counters,
                         keys=keys)
    client = connect(config.redis_url)
    processor = ShardProcessor(client, catalog, prefix=config.prefix,
                               source_id=config.source_id, shards=config.shards,
                               score_model=score_model, customer_model=customer_model,
                               policies=policies)

    def process(state: None, batch: ShardBatch | DeadLetter) -> tuple[None, BatchResult]:
        assert isinstance(batch, ShardBatch), "dead letters are split off before processing"
        return None, processor.process(batch)

    def dead_of(item: tuple[str, BatchResult]) -> list[tuple[str, bytes]]:
        counters.add(dead=len(item[1].dead_letters))
        return [(DEAD_LETTER_KEY, encode_dead_letter(d)) for d in item[1].dead_letters]

    def encode_dead(item: tuple[str, Any]) -> tuple[str, bytes]:
        dead: DeadLetter = item[1]
        return DEAD_LETTER_KEY, encode_dead_letter(dead)

    flow = Dataflow("journeys")
    raw = op.input("events", flow, JsonlSource(
        config.events_path, start=config.start_position, batch_lines=config.batch_lines,
        tail=config.tail, tick_s=config.tick_s, until_ms=config.until_ms,
        idle_exit_s=config.idle_exit_s))
    routed = op.flat_map("route", raw, router.route)
    split = op.branch("split_dead", routed, lambda item: item[0] == DEAD_LETTER_KEY)
    results = op.stateful_map("process", split.falses, process)
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
    On the event clock a shard's clock is the slowest of the partitions that sent it
    events, so a partition running ahead never fires the timers of customers it does
    not carry.
    """
    source_ids = {partition: source_id_of(kafka.events_topic, partition)
                  for partition in kafka.starts}
    keys = shard_keys(config.shards, config.workers)
    routers = {sid: BatchRouter(config.shards, sid, config.clock, counters=counters,
                                keys=keys)
               for sid in source_ids.values()}
    processor = ShardProcessor(
        connect(config.redis_url), catalog, prefix=config.prefix,
        source_id=source_id_of(kafka.events_topic, 0), shards=config.shards,
        score_model=score_model, customer_model=customer_model, policies=policies)

    event_clock = config.clock == "event"

    def route(raw: KafkaBatch) -> list[tuple[str, Any]]:
        routed = routers[raw.source_id].route(raw)
        return [(key, item if key == DEAD_LETTER_KEY else (raw.source_id, item))
                for key, item in routed]

    def process(clocks: dict[str, int] | None,
                item: tuple[str, ShardBatch]) -> tuple[dict[str, int], BatchResult]:
        clocks = clocks if clocks is not None else {}
        source_id, batch = item
        if event_clock:
            if batch.events or source_id in clocks:
                clocks[source_id] = batch.clock
            batch.clock = min(clocks.values()) if clocks else 0
        batch.source_id = source_id
        return clocks, processor.process(batch)

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
    results = op.stateful_map("process", split.falses, process)
    commands = op.flat_map("commands", results, _commands_of)
    late_dead = op.flat_map("late_dead", results, dead_of)
    dead = op.merge("dead", split.trues, late_dead)
    op.output("commands_out", commands, KafkaCommandSink(
        kafka.settings, kafka.commands_topic, _acknowledger(config),
        on_write=lambda n: counters.add(commands=n)))
    op.output("dead_out", dead, KafkaDeadLetterSink(kafka.settings, kafka.dead_letter_topic))
    return flow
