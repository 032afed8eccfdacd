"""NATS JetStream sinks: message commands and dead letters published to subjects, each
counted as written only once the stream acknowledged it.

Every message carries a `Nats-Msg-Id` header (a command's command_id; a dead letter's
source and position): a batch written again after a crash, within the stream's duplicate
window, is dropped by the server, so the subject holds each command once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext

from connectors.flow_sink import (
    CommandSink,
    CommandWriter,
    DeadLetterSink,
    DeadLetterWriter,
    stop_process,
)
from connectors.jsonl import DEAD_LETTER_RAW_BYTES
from connectors.nats_client import REQUEST_TIMEOUT_S, call, connect
from engine.core.records import DeadLetter

__all__ = ["NatsCommandSink", "NatsDeadLetterSink"]

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 30.0
"""How long a batch's publish acknowledgements may take before the batch is sent again."""
ATTEMPTS = 10
"""Sends of a batch (a server away: the client reconnects meanwhile) before the run stops
with the batch's commands still in the outbox."""
RETRY_S = 1.0
"""The wait between two sends of a batch."""


def _header(value: str) -> str:
    """`value` fit for a header line (no line breaks)."""
    return value.replace("\r", " ").replace("\n", " ")


class _Publisher:
    """Publishes a batch of messages to a subject and waits for every acknowledgement."""

    def __init__(self, url: str, subject: str) -> None:
        self.subject = subject
        self._client: Client = connect(url)
        self._js: JetStreamContext = self._client.jetstream(timeout=REQUEST_TIMEOUT_S)

    async def _send(self, messages: list[tuple[bytes, dict[str, str]]]) -> None:
        """One send of the batch, its publishing included, within `ACK_TIMEOUT_S`: the
        client lets 4,000 messages wait for their acknowledgements, and a publish past them
        waits for a free slot, so a stalled server must not hold the publishing for ever."""
        acks: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(ACK_TIMEOUT_S):
                for payload, headers in messages:
                    acks.append(await self._js.publish_async(self.subject, payload,
                                                             headers=headers))
                await asyncio.gather(*acks)
        finally:
            for ack in acks:  # frees the client's slots for the next send
                if not ack.done():
                    ack.cancel()

    def publish(self, messages: list[tuple[bytes, dict[str, str]]]) -> None:
        """Publish `messages` in order; return once the stream acknowledged them all.

        A batch not acknowledged is sent again whole (the stream drops the repeats by
        their message ids); after `ATTEMPTS` sends the process stops (exit code 3) with
        the commands still in the outbox, so the next run writes them again.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                call(self._send(messages), ACK_TIMEOUT_S + REQUEST_TIMEOUT_S)
                return
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
                if attempt == ATTEMPTS:
                    stop_process(f"{len(messages)} messages to NATS subject {self.subject!r} "
                                 f"were not acknowledged ({reason}); the commands stay in "
                                 "the outbox for the next run")
                log.warning("publishing to %r: %s; sending again", self.subject, reason)
                time.sleep(RETRY_S)

    def close(self) -> None:
        try:
            call(self._client.close(), REQUEST_TIMEOUT_S)
        except Exception as exc:  # the run is over: nothing is left to deliver
            log.warning("closing the NATS connection: %s", exc)


class _NatsCommands(CommandWriter):
    def __init__(self, url: str, subject: str) -> None:
        self._out = _Publisher(url, subject)

    def write(self, lines: list[bytes]) -> None:
        messages = []
        for line in lines:
            command = orjson.loads(line)
            command_id = str(command["command_id"])
            messages.append((line.rstrip(b"\n"), {
                "Nats-Msg-Id": command_id, "command_id": command_id,
                "customer_id": _header(str(command["customer_id"]))}))
        self._out.publish(messages)

    def close(self) -> None:
        self._out.close()


class NatsCommandSink(CommandSink):
    """Publishes command lines to a subject with `Nats-Msg-Id` and `command_id` headers
    (the command_id) and a `customer_id` header; the engine drops them from its outbox
    only after the stream acknowledged them."""

    def __init__(self, url: str, subject: str) -> None:
        super().__init__()
        self.url = url
        self.subject = subject

    def open_writer(self) -> CommandWriter:
        return _NatsCommands(self.url, self.subject)


class _NatsDeadLetters(DeadLetterWriter):
    def __init__(self, url: str, subject: str) -> None:
        self._out = _Publisher(url, subject)

    def write(self, dead: list[DeadLetter]) -> None:
        messages = []
        for letter in dead:
            headers = {"Nats-Msg-Id": _header(f"dead:{letter.source}:{letter.position}"),
                       "reason": _header(letter.reason), "source": _header(letter.source),
                       "position": str(letter.position)}
            if letter.line is not None:
                headers["line"] = str(letter.line)
            if len(letter.raw) > DEAD_LETTER_RAW_BYTES:
                headers["raw_length"] = str(len(letter.raw))
                headers["raw_sha256"] = hashlib.sha256(letter.raw).hexdigest()
            messages.append((letter.raw[:DEAD_LETTER_RAW_BYTES], headers))
        self._out.publish(messages)

    def close(self) -> None:
        self._out.close()


class NatsDeadLetterSink(DeadLetterSink):
    """Publishes each dead letter's raw input with `reason`, `source` and `position`
    headers (and `line` for a file): intact up to DEAD_LETTER_RAW_BYTES; beyond, its start
    with `raw_length` and `raw_sha256` headers."""

    def __init__(self, url: str, subject: str) -> None:
        self.url = url
        self.subject = subject

    def open_writer(self) -> DeadLetterWriter:
        return _NatsDeadLetters(self.url, self.subject)
