"""NATS JetStream events source: one subject of a stream as one partition, read in stream
order; its position is the stream sequence, stored in Redis with the state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from connectors.flow_source import EventSource, Pacing, SourcePartition
from connectors.nats_client import REQUEST_TIMEOUT_S, NatsConnectorError, call, connect
from connectors.nats_client import start as start_background
from engine.core.records import RawBatch

__all__ = ["NatsPartition", "NatsSource", "source_id_of"]

log = logging.getLogger(__name__)

FETCH_WAIT_S = 0.05
"""How long one pull waits on a quiet subject: the most a lone live event waits before the
engine sees it (a busy subject fills each pull at once)."""
FETCH_BATCH = 2000
"""Messages asked for per pull."""
READ_AHEAD_BATCHES = 2
"""Messages read ahead of the engine at most, in engine batches; beyond, pulling waits."""
FILL_WAIT_S = 0.05
"""While more messages wait on the server, how long a partition holds back a batch short of
the batch size: a full batch is one commit per shard where short ones are several (with
batches of at most 4,000 where the engine asks 8,000, a replay from NATS ran about 1.5x
slower than from a file)."""
CONSUMER_INACTIVE_S = 300.0
"""The server deletes the run's consumer this long after the run stopped pulling (a run
killed before it could delete it)."""
RETRY_S = 0.5
"""The wait before pulling again after an error (a server away, a consumer lost)."""


def source_id_of(stream: str, subject: str) -> str:
    """The name under which a subject's applied stream sequence is stored in each shard."""
    return f"nats:{stream}:{subject}"


class _Puller:
    """Pulls a subject's messages in stream order, from a stream sequence on, into a
    buffer of (sequence, payload), in the background on the NATS event loop.

    The consumer is ephemeral and acknowledges nothing: the position that counts is the
    one committed with the state. After an error it is made again from the next sequence,
    so the order holds and nothing is skipped.
    """

    def __init__(self, client: Client, stream: str, subject: str, first: int,
                 buffered_max: int) -> None:
        self._client = client
        self._buffered_max = buffered_max
        self._js: JetStreamContext = client.jetstream(timeout=REQUEST_TIMEOUT_S)
        self._stream = stream
        self._subject = subject
        self.next = first
        """The sequence of the next message to buffer."""
        self.buffer: deque[tuple[int, bytes]] = deque()
        self.pending = 0
        """Messages on the subject after the last one buffered, as the server last said."""
        self.error: BaseException | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._consumer = ""
        self._stopped = False

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        self._consumer = f"journeys-{uuid.uuid4().hex}"
        await self._js.add_consumer(self._stream, ConsumerConfig(
            name=self._consumer, filter_subject=self._subject,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(self.next, 1),
            ack_policy=AckPolicy.NONE, inactive_threshold=CONSUMER_INACTIVE_S,
            mem_storage=True))
        return await self._js.pull_subscribe_bind(consumer=self._consumer, stream=self._stream)

    async def run(self) -> None:
        while not self._stopped:
            room = self._buffered_max - len(self.buffer)
            if room <= 0:
                await asyncio.sleep(FETCH_WAIT_S / 10)
                continue
            try:
                if self._subscription is None:
                    self._subscription = await self._subscribe()
                messages = await self._subscription.fetch(min(room, FETCH_BATCH),
                                                          timeout=FETCH_WAIT_S)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except nats.errors.ConnectionClosedError as exc:
                self.error = exc
                return
            except Exception as exc:
                log.warning("reading %s from %s: %s; retrying", self._subject, self._stream,
                            exc or type(exc).__name__)
                await self._drop_consumer()
                await asyncio.sleep(RETRY_S)
                continue
            for message in messages:
                metadata = message.metadata
                sequence = metadata.sequence.stream
                if sequence < self.next:
                    continue  # a message of a consumer replaced after an error
                self.buffer.append((sequence, message.data))
                self.next = sequence + 1
                self.pending = metadata.num_pending

    async def _drop_consumer(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
        with contextlib.suppress(Exception):
            await self._js.delete_consumer(self._stream, self._consumer)

    async def stop(self) -> None:
        self._stopped = True
        await self._drop_consumer()


class NatsPartition(SourcePartition):
    """Reads one subject of a JetStream stream from stream sequence `start`.

    A replay (`pacing.stop_at_end`) stops once it has read the subject's last message as
    seen when the partition opened.
    """

    def __init__(self, url: str, stream: str, subject: str, start: int, pacing: Pacing,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        first = max(start, 1)
        super().__init__(source_id_of(stream, subject), pacing, last=first - 1)
        self._stream = stream
        self._subject = subject
        self._on_lag = on_lag
        self._client = connect(url)
        self._target = call(self._last_sequence(), REQUEST_TIMEOUT_S * 2) \
            if pacing.stop_at_end else 0
        self._read_upto = first - 1
        self._puller = _Puller(self._client, stream, subject, first,
                               READ_AHEAD_BATCHES * pacing.batch_size)
        self._short_since: float | None = None
        self._task = start_background(self._puller.run())

    async def _last_sequence(self) -> int:
        """The sequence of the subject's last message now (0: it has none)."""
        try:
            last = await self._client.jetstream().get_last_msg(self._stream, self._subject)
        except NotFoundError:
            return 0
        return int(last.seq or 0)

    def read(self, limit: int) -> RawBatch | None:
        buffer = self._puller.buffer
        if len(buffer) < limit and self._puller.pending > 0:
            now = time.monotonic()
            if self._short_since is None:
                self._short_since = now
            if now - self._short_since < FILL_WAIT_S:
                return None
        self._short_since = None
        lines: list[tuple[int, bytes]] = []
        while buffer and len(lines) < limit:
            lines.append(buffer.popleft())
        if not lines:
            if self._puller.error is not None:
                raise NatsConnectorError(f"reading {self._subject} from stream "
                                         f"{self._stream}: {self._puller.error}")
            return None
        self._read_upto = lines[-1][0]
        if self._on_lag is not None:
            self._on_lag(0, self._puller.pending + len(buffer))
        return RawBatch(lines, lines[-1][0])

    def at_end(self) -> bool:
        return self._read_upto >= self._target

    def close(self) -> None:
        with contextlib.suppress(Exception):
            call(self._puller.stop(), REQUEST_TIMEOUT_S)
            self._task.cancel()
            call(self._client.close(), REQUEST_TIMEOUT_S)


class NatsSource(EventSource):
    """A subject of a JetStream stream as one source partition (its messages in stream
    order); `resume` starts it after the sequence every shard applied."""

    def __init__(self, url: str, stream: str, subject: str, *, pacing: Pacing | None = None,
                 start: int = 1,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        super().__init__(pacing or Pacing(), {subject: start}, on_lag)
        self.url = url
        self.stream = stream
        self.subject = subject

    def source_ids(self) -> dict[str, str]:
        return {self.subject: source_id_of(self.stream, self.subject)}

    def start_after(self, applied: int) -> int:
        return applied + 1 if applied >= 1 else 1

    def build_partition(self, name: str, start: int) -> NatsPartition:
        return NatsPartition(self.url, self.stream, self.subject, start, self.pacing,
                             on_lag=self.on_lag)
