"""Kafka sinks: message commands keyed by customer, dead letters with their reason."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import NoReturn

import orjson
from bytewax.outputs import StatefulSinkPartition
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.jsonl import DEAD_LETTER_RAW_BYTES
from connectors.kafka_config import KafkaConnectorError
from connectors.single_writer import SingleWriterSink
from engine.errors import say_before_exit
from engine.records import DeadLetter

FLUSH_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


def stop_process(reason: str) -> NoReturn:
    """End the process at once with exit code 3, saying why on stderr.

    Used where an exception would not reach the caller (inside the dataflow runtime's
    sinks); everything committed is safe in Redis, so the next run resumes.
    """
    say_before_exit(f"journeys: {reason}")
    os._exit(3)


def producer_settings(settings: Mapping[str, str]) -> dict[str, object]:
    """An idempotent producer that waits for every in-sync replica."""
    config: dict[str, object] = {"linger.ms": 5, **settings}
    config.update({"enable.idempotence": True, "acks": "all"})
    return config


class _Producing:
    """A producer that raises if any message of a flushed batch was not delivered."""

    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        self.topic = topic
        self._failures: list[KafkaError] = []
        try:
            self._producer = Producer(producer_settings(settings))
        except KafkaException as exc:
            raise KafkaConnectorError(f"cannot create a producer for {topic!r}: {exc}") from None

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error)

    def produce(self, value: bytes, key: bytes | None,
                headers: list[tuple[str, str | bytes | None]]) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, headers=headers,
                                       on_delivery=self._delivered)
                return
            except BufferError:
                self._producer.poll(0.05)

    def flush(self) -> None:
        """Wait until every produced message is acknowledged by the brokers.

        Through a broker outage librdkafka keeps retrying until `message.timeout.ms`; the
        wait goes on meanwhile. A message that still fails stops the process (exit code 3)
        with the outbox intact: raising here would leave the dataflow runtime hanging, and
        a restart writes the unacknowledged commands again.
        """
        while True:
            left = self._producer.flush(FLUSH_TIMEOUT_S)
            if not left or self._failures:
                break
            log.warning("%d messages to %r not acknowledged after %.0fs; still waiting",
                        left, self.topic, FLUSH_TIMEOUT_S)
        if self._failures:
            first, count = self._failures[0], len(self._failures)
            stop_process(f"{count} messages to {self.topic!r} were not delivered: "
                         f"{first.str()}; the commands stay in the outbox for the next run")


class _CommandsPartition(StatefulSinkPartition[tuple[str, bytes], None]):
    def __init__(self, settings: Mapping[str, str], topic: str,
                 acknowledge: Callable[[dict[int, int]], None],
                 on_write: Callable[[int], None] | None) -> None:
        self._out = _Producing(settings, topic)
        self._acknowledge = acknowledge
        self._on_write = on_write

    def write_batch(self, values: list[tuple[str, bytes]]) -> None:
        if not values:
            return
        written: dict[int, int] = {}
        for shard, line in values:
            command = orjson.loads(line)
            self._out.produce(line.rstrip(b"\n"), str(command["customer_id"]).encode(),
                              [("command_id", str(command["command_id"]).encode())])
            written[int(shard)] = written.get(int(shard), 0) + 1
        self._out.flush()
        self._acknowledge(written)
        if self._on_write is not None:
            self._on_write(len(values))

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._out.flush()


class KafkaCommandSink(SingleWriterSink[tuple[str, bytes]]):
    """Produces (shard, command line) items keyed by customer_id with a `command_id`
    header; acknowledges each shard's outbox only after the brokers acknowledged them."""

    part_name = "commands"

    def __init__(self, settings: Mapping[str, str], topic: str,
                 acknowledge: Callable[[dict[int, int]], None],
                 on_write: Callable[[int], None] | None = None) -> None:
        self.settings = dict(settings)
        self.topic = topic
        self.acknowledge = acknowledge
        self.on_write = on_write

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> _CommandsPartition:
        return _CommandsPartition(self.settings, self.topic, self.acknowledge, self.on_write)


class _DeadPartition(StatefulSinkPartition[DeadLetter, None]):
    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        self._out = _Producing(settings, topic)

    def write_batch(self, values: list[DeadLetter]) -> None:
        for dead in values:
            headers: list[tuple[str, str | bytes | None]] = [
                ("reason", dead.reason.encode()), ("source", dead.source.encode()),
                ("position", str(dead.position).encode())]
            if len(dead.raw) > DEAD_LETTER_RAW_BYTES:
                headers += [("raw_length", str(len(dead.raw)).encode()),
                            ("raw_sha256", hashlib.sha256(dead.raw).hexdigest().encode())]
            self._out.produce(dead.raw[:DEAD_LETTER_RAW_BYTES], None, headers)
        if values:
            self._out.flush()

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._out.flush()


class KafkaDeadLetterSink(SingleWriterSink[DeadLetter]):
    """Produces each dead letter's raw input with `reason`, `source` and `position`
    headers: intact up to DEAD_LETTER_RAW_BYTES; beyond, its start with `raw_length` and
    `raw_sha256` headers."""

    part_name = "dead"

    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        self.settings = dict(settings)
        self.topic = topic

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _DeadPartition:
        return _DeadPartition(self.settings, self.topic)
