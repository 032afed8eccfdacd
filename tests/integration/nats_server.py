"""The NATS server the tests use (JetStream on), and streams made and deleted per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

NATS_URL = os.environ.get("JOURNEYS_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass(frozen=True)
class Names:
    """A test's own streams and subjects."""

    events_stream: str
    outputs_stream: str
    events: str
    commands: str
    dead: str


async def _answers() -> bool:
    try:
        client = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False,
                                    max_reconnect_attempts=1, reconnect_time_wait=0)
    except Exception:
        return False
    await client.close()
    return True


@contextmanager
def nats_names() -> Iterator[Names]:
    """Unique stream and subject names; every stream made with them is deleted afterwards."""
    if not asyncio.run(_answers()):
        pytest.skip(f"no NATS server at {NATS_URL} (JOURNEYS_TEST_NATS_URL)")
    tag = uuid.uuid4().hex[:10]
    names = Names(f"T_EV_{tag}", f"T_OUT_{tag}", f"t.{tag}.events", f"t.{tag}.commands",
                  f"t.{tag}.dead")
    try:
        yield names
    finally:
        asyncio.run(_delete_streams([names.events_stream, names.outputs_stream]))


async def _delete_streams(streams: list[str]) -> None:
    client = await nats.connect(NATS_URL)
    try:
        for stream in streams:
            with suppress(NotFoundError):
                await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def create_stream(stream: str, subjects: list[str]) -> None:
    async def create() -> None:
        client = await nats.connect(NATS_URL)
        try:
            await client.jetstream().add_stream(StreamConfig(name=stream, subjects=subjects))
        finally:
            await client.close()
    asyncio.run(create())


def publish(stream: str, subject: str, lines: list[bytes]) -> None:
    """Publish `lines` to `subject` in order, creating `stream` for it if missing."""
    async def send() -> None:
        client = await nats.connect(NATS_URL)
        js = client.jetstream()
        try:
            try:
                await js.stream_info(stream)
            except NotFoundError:
                await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
            acks = [await js.publish_async(subject, line) for line in lines]
            await asyncio.gather(*acks)
        finally:
            await client.close()
    asyncio.run(send())


def count(stream: str, subject: str) -> int:
    """How many messages `subject` holds in `stream`."""
    async def ask() -> int:
        client = await nats.connect(NATS_URL)
        try:
            info = await client.jetstream().stream_info(stream, subjects_filter=subject)
            return int((info.state.subjects or {}).get(subject, 0))
        finally:
            await client.close()
    return asyncio.run(ask())


def read_subject(stream: str, subject: str) -> list[tuple[bytes, dict[str, str]]]:
    """Every message of `subject` in `stream`, in order: (payload, headers)."""
    async def read() -> list[tuple[bytes, dict[str, str]]]:
        client = await nats.connect(NATS_URL)
        js = client.jetstream()
        out: list[tuple[bytes, dict[str, str]]] = []
        try:
            info = await js.stream_info(stream, subjects_filter=subject)
            total = int((info.state.subjects or {}).get(subject, 0))
            pull = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL))
            while len(out) < total:
                for message in await pull.fetch(1000, timeout=5):
                    out.append((message.data, dict(message.headers or {})))
            await pull.unsubscribe()
        finally:
            await client.close()
        return out
    return asyncio.run(read())
