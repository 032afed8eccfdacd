"""The Bytewax dataflow: source -> router -> shard processor -> sinks. Wiring only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
import redis
from bytewax.dataflow import Dataflow

from connectors.jsonl import CommandSink, JsonlSink, JsonlSource, encode_dead_letter
from engine.catalog import Catalog
from engine.processor import BatchResult, DeadLetter, ShardBatch, ShardProcessor
from engine.routing import DEAD_LETTER_KEY, BatchRouter, ClockMode, RunCounters
from engine.scoring import DEFAULT_MODEL, ScoreModel
from engine.store import acknowledge_outbox
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel


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
    batch_lines: int = 2000
    tail: bool = False
    tick_s: float = 1.0
    until_ms: int | None = None
    idle_exit_s: float | None = None


def build_flow(config: FlowConfig, catalog: Catalog, counters: RunCounters,
               score_model: ScoreModel = DEFAULT_MODEL,
               customer_model: CustomerModel = EMPTY_MODEL,
               policies: Policies = NO_POLICIES) -> Dataflow:
    """A dataflow that runs `catalog`'s journeys over the configured events."""
    router = BatchRouter(config.shards, config.source_id, config.clock, counters=counters)
    client = redis.Redis.from_url(config.redis_url)
    processor = ShardProcessor(client, catalog, prefix=config.prefix,
                               source_id=config.source_id, shards=config.shards,
                               score_model=score_model, customer_model=customer_model,
                               policies=policies)

    def process(state: None, batch: ShardBatch | DeadLetter) -> tuple[None, BatchResult]:
        assert isinstance(batch, ShardBatch), "dead letters are split off before processing"
        return None, processor.process(batch)

    def commands_of(item: tuple[str, BatchResult]) -> list[tuple[str, tuple[str, bytes]]]:
        return [(item[0], (item[0], line)) for line in item[1].lines]

    acknowledging = redis.Redis.from_url(config.redis_url)

    def acknowledge(written: dict[int, int]) -> None:
        acknowledge_outbox(acknowledging, config.prefix, written)

    def dead_of(item: tuple[str, BatchResult]) -> list[tuple[str, bytes]]:
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
    commands = op.flat_map("commands", results, commands_of)
    late_dead = op.flat_map("late_dead", results, dead_of)
    early_dead = op.map("encode_dead", split.trues, encode_dead)
    dead = op.merge("dead", early_dead, late_dead)
    op.output("commands_out", commands, CommandSink(
        config.commands_path, acknowledge, on_write=lambda n: counters.add(commands=n)))
    op.output("dead_out", dead, JsonlSink(config.dead_letter_path))
    return flow
