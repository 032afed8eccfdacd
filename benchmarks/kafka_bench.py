"""The Kafka path under load: produce the chain to a partitioned topic, then read it with
no processing (the Kafka ceiling) and run the engine Kafka to Kafka with one and with two
processes, each process reading its own partitions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main

from benchmarks.tansu import NoBrokerError, create_topics, produce, tansu_broker
from connectors.flow_source import Pacing
from connectors.kafka import KafkaSource
from engine.core.records import RawBatch
from engine.flow.routing import BatchRouter, RunCounters

PARTITIONS = 4


@dataclass(frozen=True)
class Produced:
    """Events written to the events topic, and how long producing them took."""

    topic: str
    events: int
    seconds: float


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """`bootstrap` when given, else a Tansu broker for the duration (NoBrokerError when
    none is installed)."""
    if bootstrap:
        yield bootstrap
        return
    with tansu_broker() as started:
        yield started


def produce_events(bootstrap: str, events: Path, tag: str,
                   partitions: int = PARTITIONS) -> Produced:
    """Create `events-<tag>` with `partitions` partitions and produce every line of
    `events` to it, keyed by customer_id."""
    topic = f"events-{tag}"
    create_topics(bootstrap, {topic: partitions})
    began = time.perf_counter()
    with events.open("rb") as lines:
        count = produce(bootstrap, topic, (
            (str(orjson.loads(line)["customer_id"]), line.rstrip(b"\n")) for line in lines),
            **{"batch.size": 1_000_000, "enable.idempotence": True})
    return Produced(topic, count, time.perf_counter() - began)


def kafka_ceiling(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> tuple[int, float]:
    """Events read, decoded and sharded from `topic` through the dataflow with no
    processing, and the seconds it took."""
    counters = RunCounters()
    routers = {f"kafka:{topic}:{p}": BatchRouter(partitions, f"kafka:{topic}:{p}",
                                                 counters=counters)
               for p in range(partitions)}

    def route(raw: RawBatch) -> list[int]:
        return [len(routers[raw.source_id].route(raw))]

    flow = Dataflow("kafka_ceiling")
    raw = op.input("events", flow, KafkaSource(
        {"bootstrap.servers": bootstrap}, topic, dict.fromkeys(range(partitions), -1),
        pacing=Pacing(stop_at_end=True)))
    op.inspect("count", op.flat_map("route", raw, route), lambda *_: None)
    began = time.perf_counter()
    cli_main(flow)
    return counters.events_read, time.perf_counter() - began


def kafka_source(bootstrap: str, events_topic: str, prefix: str) -> list[str]:
    """`journeys run` options for the events topic; creates the output topics."""
    commands, dead = f"commands-{prefix}", f"dead-{prefix}"
    create_topics(bootstrap, {commands: 1, dead: 1})
    return ["--kafka", bootstrap, "--events-topic", events_topic, "--commands-topic",
            commands, "--dead-letter-topic", dead, "--kafka-until-end"]


def skipped(say: Callable[[str], None], exc: NoBrokerError) -> str:
    line = f"Kafka rows skipped: {exc}; or pass --kafka BOOTSTRAP"
    say(line)
    return line
