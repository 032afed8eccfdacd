"""Kafka events source: one Bytewax partition per Kafka partition, offsets kept in Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from connectors.kafka_config import KafkaConnectorError
from engine.records import RawBatch
from engine.run_defaults import DEFAULT_BATCH_LINES

IDLE_WAKE_S = 0.005
"""How long a partition with nothing to read waits before asking its consumer again."""


log = logging.getLogger(__name__)

def source_id_of(topic: str, partition: int) -> str:
    """The name under which a partition's applied offset is stored in each shard."""
    return f"kafka:{topic}:{partition}"


@dataclass
class KafkaBatch(RawBatch):
    """A batch of one Kafka partition: positions are offsets; `source_id` names the partition."""

    source_id: str = ""


def consumer_settings(settings: Mapping[str, str]) -> dict[str, object]:
    """Consumer settings: explicit assignment, no group commits, no auto offset store."""
    config: dict[str, object] = {"group.id": "journeys-engine", **settings}
    # an offset from Redis that the topic no longer has (retention, a recreated topic)
    # restarts at the earliest one kept: events already applied are skipped by position,
    # none is skipped silently
    config.update({"enable.auto.commit": False, "enable.auto.offset.store": False,
                   "enable.partition.eof": False, "auto.offset.reset": "earliest"})
    return config


class KafkaPartition(StatefulSourcePartition[KafkaBatch, int]):
    """Reads one Kafka partition from `start` (an offset, or -1 for the beginning).

    With `until_end` it stops once it reaches the end of the partition as first seen
    (the larger of the listed high watermark and the first fetch's), after emitting
    `until_ms` as a clock hint when given. Otherwise it tails, emitting an empty batch
    every `tick_s` seconds with no traffic so wall-clock timers fire.
    """

    def __init__(self, settings: Mapping[str, str], topic: str, partition: int, start: int,
                 *, batch_size: int, until_end: bool, tick_s: float,
                 until_ms: int | None, timeout_s: float = 10.0,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        self._tp = TopicPartition(topic, partition)
        self._on_lag = on_lag
        self._source_id = source_id_of(topic, partition)
        self._batch_size = batch_size
        self._tick_s = tick_s
        self._until_ms = until_ms
        self._last = start - 1 if start >= 0 else -1
        self._next = max(start, 0)
        self._idle = False
        self._last_emit = time.monotonic()
        self._done = False
        self._opened = False
        try:
            self._consumer = Consumer(consumer_settings(settings))
            self._target: int | None = None
            self._listed_high = -1
            if until_end:
                self._listed_high = self._consumer.get_watermark_offsets(
                    self._tp, timeout=timeout_s)[1]
            self._until_end = until_end
            self._consumer.assign([TopicPartition(topic, partition,
                                                  start if start >= 0 else OFFSET_BEGINNING)])
        except KafkaException as exc:
            raise KafkaConnectorError(
                f"cannot read {topic}[{partition}] from offset {start}: {exc}") from None

    def next_batch(self) -> list[KafkaBatch]:
        if self._done:
            raise StopIteration
        if not self._opened:
            # an opening batch, even at the end of the partition: every shard then writes
            # the commands its outbox kept from an earlier run
            self._opened = True
            return [self._batch([])]
        messages = self._consumer.consume(self._batch_size, 0)
        lines: list[tuple[int, bytes]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if not error.fatal():  # a broker away: librdkafka reconnects by itself
                    log.warning("reading %s[%d]: %s; retrying", self._tp.topic,
                                self._tp.partition, error.str())
                    continue
                raise KafkaConnectorError(
                    f"reading {self._tp.topic}[{self._tp.partition}]: {error.str()}")
            offset = message.offset() or 0
            lines.append((offset, message.value() or b""))
            self._next = offset + 1
        self._idle = not lines
        if self._on_lag is not None and messages:
            high = self._consumer.get_watermark_offsets(self._tp, cached=True)[1]
            if high >= 0:  # the last fetch's end of partition, known without a request
                self._on_lag(self._tp.partition, max(high - self._next, 0))
        if lines:
            self._last = lines[-1][0]
            self._last_emit = time.monotonic()
            return [self._batch(lines)]
        if self._until_end:
            if self._at_end():
                # the last batch says the partition is done, so its clock holds nothing back
                self._done = True
                return [self._batch([], clock_hint=self._until_ms, idle=True)]
            return []
        if time.monotonic() - self._last_emit >= self._tick_s:
            self._last_emit = time.monotonic()
            return [self._batch([], idle=True)]
        return []

    def _batch(self, lines: list[tuple[int, bytes]], clock_hint: int | None = None,
               idle: bool = False) -> KafkaBatch:
        return KafkaBatch(lines, self._last, clock_hint, idle, self._source_id)

    def _at_end(self) -> bool:
        """Whether the partition's end as first seen has been read (idle calls only)."""
        if self._target is None:
            high = self._consumer.get_watermark_offsets(self._tp, cached=True)[1]
            if high < 0:
                return False
            self._target = max(high, self._listed_high)
        position = self._consumer.position([self._tp])[0].offset
        if position >= 0:
            self._next = max(self._next, position)
        return self._next >= self._target

    def next_awake(self) -> datetime | None:
        if self._idle:
            return datetime.now(UTC) + timedelta(seconds=IDLE_WAKE_S)
        return None

    def snapshot(self) -> int:
        return self._last + 1

    def close(self) -> None:
        self._consumer.close()


class KafkaSource(FixedPartitionedSource[KafkaBatch, int]):
    """The events topic, one source partition per Kafka partition.

    `starts` maps each partition to the offset to read first (-1: the beginning); the
    runner derives it from the offsets the shards applied.
    """

    def __init__(self, settings: Mapping[str, str], topic: str, starts: Mapping[int, int], *,
                 batch_size: int = DEFAULT_BATCH_LINES, until_end: bool = False,
                 tick_s: float = 1.0, until_ms: int | None = None,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        self.settings = dict(settings)
        self.on_lag = on_lag
        self.topic = topic
        self.starts = dict(starts)
        self.batch_size = batch_size
        self.until_end = until_end
        self.tick_s = tick_s
        self.until_ms = until_ms

    def list_parts(self) -> list[str]:
        return [str(partition) for partition in sorted(self.starts)]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> KafkaPartition:
        partition = int(for_part)
        start = resume_state if resume_state is not None else self.starts[partition]
        return KafkaPartition(self.settings, self.topic, partition, start,
                              batch_size=self.batch_size, until_end=self.until_end,
                              tick_s=self.tick_s, until_ms=self.until_ms, on_lag=self.on_lag)
