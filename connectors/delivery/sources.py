"""Where a delivery worker reads message commands: a JSON Lines file or a Kafka topic.

A source hands out batches of `Incoming` commands and is told, with `commit()`, when the
ledger holds the outcome of everything handed out so far; a Kafka source commits its
consumer offsets only then, so a worker killed in between reads those commands again
(the ledger then skips what it already finished).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from connectors.kafka_config import KafkaConnectorError, topic_partitions

__all__ = ["CommandSource", "FileSource", "Incoming", "KafkaCommandSource"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One command as read: decoded, or the reason it is not JSON; `where` names it."""

    command: Any
    raw: bytes
    where: str
    problem: str | None = None


class CommandSource(Protocol):
    """Batches of commands; `exhausted` once a run that does not serve has read it all."""

    @property
    def exhausted(self) -> bool: ...

    def next_batch(self, limit: int, wait_s: float) -> list[Incoming]: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


def _decode(raw: bytes, where: str) -> Incoming:
    try:
        return Incoming(orjson.loads(raw), raw, where)
    except orjson.JSONDecodeError as exc:
        return Incoming(None, raw, where, f"not valid JSON: {exc}")


class FileSource:
    """The lines of a JSON Lines file, read once from the start."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file: IO[bytes] = self.path.open("rb")
        self._line = 0
        self._exhausted = False

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def next_batch(self, limit: int, wait_s: float) -> list[Incoming]:
        batch: list[Incoming] = []
        while len(batch) < limit:
            raw = self._file.readline()
            if not raw:
                self._exhausted = True
                break
            self._line += 1
            if raw.strip():
                batch.append(_decode(raw.rstrip(b"\r\n"), f"{self.path}:{self._line}"))
        return batch

    def commit(self) -> None:
        """Nothing to do: a file is read from its start each run; the ledger skips."""

    def close(self) -> None:
        self._file.close()


class KafkaCommandSource:
    """Every partition of a commands topic, from the consumer group's committed offsets.

    Partitions are assigned, not balanced: each worker reads the whole topic and the
    shared ledger lets one of them claim each command. With `until_end` the source is
    exhausted once it has read up to the ends the partitions had at start.
    """

    def __init__(self, settings: dict[str, str], topic: str, group: str, *,
                 until_end: bool, commit: bool = True, timeout_s: float = 10.0) -> None:
        self.topic = topic
        self._until_end = until_end
        self._commit = commit
        partitions = topic_partitions(settings, [topic], timeout_s)[topic]
        config: dict[str, object] = {**settings, "group.id": group,
                                     "enable.auto.commit": False,
                                     "enable.auto.offset.store": False,
                                     "auto.offset.reset": "earliest"}
        try:
            self._consumer = Consumer(config)
            wanted = [TopicPartition(topic, p) for p in range(partitions)]
            committed = self._consumer.committed(wanted, timeout=timeout_s)
            starts = [TopicPartition(topic, tp.partition,
                                     tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                      for tp in committed]
            self._next = {tp.partition: max(tp.offset, 0) for tp in committed}
            self._ends = {p: self._consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout_s)[1] for p in range(partitions)}
            self._consumer.assign(starts)
        except KafkaException as exc:
            raise KafkaConnectorError(f"cannot read commands topic {topic!r}: {exc}") from None
        self._read = dict(self._next)

    @property
    def exhausted(self) -> bool:
        return self._until_end and all(self._read.get(p, 0) >= end
                                       for p, end in self._ends.items())

    def next_batch(self, limit: int, wait_s: float) -> list[Incoming]:
        if self.exhausted:
            return []
        batch: list[Incoming] = []
        for message in self._consumer.consume(limit, wait_s):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF or not error.fatal():
                    log.warning("reading %s: %s", self.topic, error.str())
                    continue
                raise KafkaConnectorError(f"reading {self.topic}: {error.str()}")
            partition, offset = message.partition() or 0, message.offset() or 0
            self._read[partition] = offset + 1
            batch.append(_decode(message.value() or b"",
                                 f"{self.topic}[{partition}]@{offset}"))
        return batch

    def commit(self) -> None:
        """Commit the offsets read so far; call once the ledger has their outcomes."""
        moved = [TopicPartition(self.topic, p, offset) for p, offset in self._read.items()
                 if offset != self._next.get(p)]
        if not moved or not self._commit:
            return
        try:
            self._consumer.commit(offsets=moved, asynchronous=False)
        except KafkaException as exc:
            raise KafkaConnectorError(f"cannot commit offsets of {self.topic!r}: {exc}") \
                from None
        self._next.update({tp.partition: tp.offset for tp in moved})

    def close(self) -> None:
        self._consumer.close()
