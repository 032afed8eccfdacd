"""Accepted events produced to the engine's events topic, keyed by customer id.

Durable before acknowledged: the producer is idempotent and waits for every in-sync
replica (`acks=all`, `enable.idempotence=true`), and `store` returns only when the delivery
report of each of the call's events came back without an error. Keys are hashed with
librdkafka's `consistent_random` partitioner (CRC-32 of the customer id), as every other
producer of the events topic, so a customer's events share a partition (a shard) and keep
their order.

A delivery that fails (the broker gone past `message.timeout.ms`, the topic deleted) fails
the request: the client gets 503 and sends again. The events of that request that were
delivered are reported in `StoreFailed.stored`, so they are marked as seen and the retry
does not produce them twice.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.ingest.batch import Accepted
from connectors.ingest.sink import StoreFailed
from connectors.kafka_config import KafkaConnectorError, topic_partitions
from connectors.kafka_sinks import producer_settings

__all__ = ["DELIVERY_TIMEOUT_MS", "KafkaSink"]

DELIVERY_TIMEOUT_MS = 30_000
"""How long librdkafka retries a message before reporting it failed (its default, five
minutes, would hold a client's request that long); `--kafka-config` may change it."""
_POLL_S = 0.1
Outcome = KafkaError | KafkaException | None
"""A delivery report's error (None: delivered), or the error that kept it from queueing."""
_FULL_QUEUE_WAIT_S = 0.01


class KafkaSink:
    """Produces accepted events and waits for their delivery reports."""

    def __init__(self, settings: Mapping[str, str], topic: str) -> None:
        topic_partitions(settings, [topic])  # a clear error for a missing topic
        self.topic = topic
        self.description = f"Kafka topic {topic!r} on {settings.get('bootstrap.servers')}"
        config = {"message.timeout.ms": DELIVERY_TIMEOUT_MS, **producer_settings(settings),
                  "partitioner": "consistent_random"}
        try:
            self._producer = Producer(config)
        except KafkaException as exc:
            raise KafkaConnectorError(f"cannot create a producer for {topic!r}: {exc}") from None
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="ingest-kafka-poll",
                                        daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        """Serve delivery reports (they run on this thread)."""
        while self._running:
            self._producer.poll(_POLL_S)

    async def store(self, events: Sequence[Accepted]) -> None:
        loop = asyncio.get_running_loop()
        reports: list[asyncio.Future[Outcome]] = []
        for event in events:
            report: asyncio.Future[Outcome] = loop.create_future()
            reports.append(report)
            while True:
                try:
                    self._producer.produce(
                        self.topic, value=event.line, key=event.customer_id.encode(),
                        on_delivery=_reporter(loop, report))
                    break
                except BufferError:  # the local queue is full: the poller drains it
                    await asyncio.sleep(_FULL_QUEUE_WAIT_S)
                except KafkaException as exc:
                    report.set_result(exc)
                    break
        errors = await asyncio.gather(*reports)
        failed = [error for error in errors if error is not None]
        if failed:
            stored = frozenset(i for i, error in enumerate(errors) if error is None)
            raise StoreFailed(f"{len(failed)} of {len(events)} events were not delivered to "
                              f"{self.topic!r}: {failed[0]}", stored)

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.flush, DELIVERY_TIMEOUT_MS / 1000)
        self._running = False
        self._poller.join()


def _reporter(loop: asyncio.AbstractEventLoop,
              report: asyncio.Future[Outcome]) -> Callable[[KafkaError | None, Message], None]:
    """A delivery callback that hands its outcome to `report` on the event loop."""

    def delivered(error: KafkaError | None, _message: Message) -> None:
        loop.call_soon_threadsafe(_settle, report, error)

    return delivered


def _settle(report: asyncio.Future[Outcome], error: Outcome) -> None:
    if not report.done():
        report.set_result(error)
