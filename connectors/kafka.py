"""Kafka events source: one Bytewax partition per Kafka partition, offsets kept in Redis."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from connectors.flow_source import EventSource, Pacing, SourcePartition
from connectors.kafka_config import KafkaConnectorError
from engine.core.records import RawBatch

log = logging.getLogger(__name__)


def source_id_of(topic: str, partition: int) -> str:
    """The name under which a partition's applied offset is stored in each shard."""
    return f"kafka:{topic}:{partition}"


def consumer_settings(settings: Mapping[str, str]) -> dict[str, object]:
    """Consumer settings: explicit assignment, no group commits, no auto offset store."""
    config: dict[str, object] = {"group.id": "journeys-engine", **settings}
    # an offset from Redis that the topic no longer has (retention, a recreated topic)
    # restarts at the earliest one kept: events already applied are skipped by position,
    # none is skipped silently
    config.update({"enable.auto.commit": False, "enable.auto.offset.store": False,
                   "enable.partition.eof": False, "auto.offset.reset": "earliest"})
    return config


class KafkaPartition(SourcePartition):
    """Reads one Kafka partition from `start` (an offset, or -1 for the beginning).

    A replay (`pacing.stop_at_end`) stops once it reaches the end of the partition as first
    seen (the larger of the listed high watermark and the first fetch's).
    """

    def __init__(self, settings: Mapping[str, str], topic: str, partition: int, start: int,
                 pacing: Pacing, timeout_s: float = 10.0,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        super().__init__(source_id_of(topic, partition), pacing,
                         last=start - 1 if start >= 0 else -1)
        self._tp = TopicPartition(topic, partition)
        self._on_lag = on_lag
        self._next = max(start, 0)
        self._target: int | None = None
        self._listed_high = -1
        try:
            self._consumer = Consumer(consumer_settings(settings))
            if pacing.stop_at_end:
                self._listed_high = self._consumer.get_watermark_offsets(
                    self._tp, timeout=timeout_s)[1]
            self._consumer.assign([TopicPartition(topic, partition,
                                                  start if start >= 0 else OFFSET_BEGINNING)])
        except KafkaException as exc:
            raise KafkaConnectorError(
                f"cannot read {topic}[{partition}] from offset {start}: {exc}") from None

    def read(self, limit: int) -> RawBatch | None:
        messages = self._consumer.consume(limit, 0)
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
        if self._on_lag is not None and messages:
            high = self._consumer.get_watermark_offsets(self._tp, cached=True)[1]
            if high >= 0:  # the last fetch's end of partition, known without a request
                self._on_lag(self._tp.partition, max(high - self._next, 0))
        return RawBatch(lines, lines[-1][0]) if lines else None

    def at_end(self) -> bool:
        if self._target is None:
            high = self._consumer.get_watermark_offsets(self._tp, cached=True)[1]
            if high < 0:
                return False
            self._target = max(high, self._listed_high)
        position = self._consumer.position([self._tp])[0].offset
        if position >= 0:
            self._next = max(self._next, position)
        return self._next >= self._target

    def close(self) -> None:
        self._consumer.close()


class KafkaSource(EventSource):
    """The events topic, one source partition per Kafka partition.

    `starts` maps each partition to the offset to read first (-1: the beginning); `resume`
    sets them from the offsets the shards applied.
    """

    def __init__(self, settings: Mapping[str, str], topic: str, starts: Mapping[int, int], *,
                 pacing: Pacing | None = None,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        super().__init__(pacing or Pacing(), {str(p): start for p, start in starts.items()},
                         on_lag)
        self.settings = dict(settings)
        self.topic = topic
        self.partitions = sorted(starts)

    def source_ids(self) -> dict[str, str]:
        return {str(p): source_id_of(self.topic, p) for p in self.partitions}

    def start_after(self, applied: int) -> int:
        return applied + 1 if applied >= 0 else -1

    def build_partition(self, name: str, start: int) -> KafkaPartition:
        return KafkaPartition(self.settings, self.topic, int(name), start, self.pacing,
                              on_lag=self.on_lag)
