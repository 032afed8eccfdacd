"""Kafka sinks: message commands keyed by customer, dead letters with their reason."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.flow_sink import (
    CommandSink,
    CommandWriter,
    DeadLetterSink,
    DeadLetterWriter,
    stop_process,
)
from connectors.jsonl import DEAD_LETTER_RAW_BYTES
from connectors.kafka_config import KafkaConnectorError
from engine.core.records import DeadLetter

FLUSH_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


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


class _KafkaCommands(CommandWriter):
    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        self._out = _Producing(settings, topic)

    def write(self, lines: list[bytes]) -> None:
        for line in lines:
            command = orjson.loads(line)
            self._out.produce(line.rstrip(b"\n"), str(command["customer_id"]).encode(),
                              [("command_id", str(command["command_id"]).encode())])
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class KafkaCommandSink(CommandSink):
    """Produces command lines keyed by customer_id with a `command_id` header; the engine
    drops them from its outbox only after the brokers acknowledged them."""

    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        super().__init__()
        self.settings = dict(settings)
        self.topic = topic

    def open_writer(self) -> CommandWriter:
        return _KafkaCommands(self.settings, self.topic)


class _KafkaDeadLetters(DeadLetterWriter):
    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        self._out = _Producing(settings, topic)

    def write(self, dead: list[DeadLetter]) -> None:
        for letter in dead:
            headers: list[tuple[str, str | bytes | None]] = [
                ("reason", letter.reason.encode()), ("source", letter.source.encode()),
                ("position", str(letter.position).encode())]
            if len(letter.raw) > DEAD_LETTER_RAW_BYTES:
                headers += [("raw_length", str(len(letter.raw)).encode()),
                            ("raw_sha256", hashlib.sha256(letter.raw).hexdigest().encode())]
            self._out.produce(letter.raw[:DEAD_LETTER_RAW_BYTES], None, headers)
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class KafkaDeadLetterSink(DeadLetterSink):
    """Produces each dead letter's raw input with `reason`, `source` and `position`
    headers: intact up to DEAD_LETTER_RAW_BYTES; beyond, its start with `raw_length` and
    `raw_sha256` headers."""

    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        self.settings = dict(settings)
        self.topic = topic

    def open_writer(self) -> DeadLetterWriter:
        return _KafkaDeadLetters(self.settings, self.topic)
