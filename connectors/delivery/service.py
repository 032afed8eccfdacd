"""Delivering message commands: hold until due, render, send with retries under rate
limits, record, and report back.

    summary = deliver_file("commands.jsonl", "message_events.jsonl", "dead_letters.jsonl",
                           "delivery.yaml", "templates", "ledger.sqlite")

Guarantees: per channel, at least once (`after_crash: resend`) or at most once
(`after_crash: give_up`), and once per command id as far as the ledger knows.
A command is never sent before its `send_at`: until then it is held in the ledger, which
survives a restart. A command already delivered, or claimed by another worker sharing the
ledger, is skipped, so replaying a commands file never sends twice. A crash between a
send and its ledger entry resends that one command on a `resend` channel (webhooks carry
an `Idempotency-Key` and emails a stable `Message-ID` for that); on a `give_up` channel
it is recorded `unknown` and dead-lettered instead. Every outcome becomes a
`message` event for the engine; commands that cannot be delivered go to the dead-letter
file with the reason. Commands a backtest wrote are refused unless allowed.

The parts: `delivery_send` (one command), `delivery_worker` (batches, claims, the pool),
`delivery_ledger` (SQLite or Redis), `delivery_sources` (file or Kafka),
`delivery_rate` (per-channel rates), `delivery_dry_run`, and `delivery_cli`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from connectors.appending import open_for_append, sync_to_disk
from connectors.delivery.channels import Channel
from connectors.delivery.config import DeliveryConfig, build_connectors, load_delivery_config
from connectors.delivery.ledger import DeliveryLedger, Ledger, LedgerEntry, open_ledger
from connectors.delivery.rate import TokenBucket
from connectors.delivery.send import (
    CommandSender,
    Renderer,
    RetryPolicy,
    backoff_delay,
    message_event,
)
from connectors.delivery.sources import CommandSource, FileSource
from connectors.delivery.worker import (
    DeliverySummary,
    DeliveryWorker,
    EventSink,
    WorkerOptions,
    utc_now,
)

__all__ = [
    "DeliveryLedger",
    "DeliverySummary",
    "LedgerEntry",
    "Renderer",
    "backoff_delay",
    "deliver",
    "deliver_command",
    "deliver_file",
    "deliver_source",
    "message_event",
    "rate_buckets",
    "sender_for",
]


def deliver(commands: Iterable[Any], renderer: Renderer, connectors: Mapping[str, Channel],
            ledger: Ledger, *, max_attempts: int = 5, base_delay_s: float = 0.5,
            max_delay_s: float = 60.0, sleep: Callable[[float], None] = time.sleep,
            now: Callable[[], datetime] = utc_now, on_event: EventSink | None = None,
            on_dead_letter: EventSink | None = None, concurrency: int = 1,
            allow_backtest: bool = False,
            at_most_once: frozenset[str] = frozenset()) -> DeliverySummary:
    """Deliver each due command once, hold the others in `ledger`; report outcomes to
    `on_event`, failures to `on_dead_letter`.

    For every command the `message` event is handed over before the ledger records the
    outcome, so an outcome is never recorded without its event. With `concurrency` 1 the
    commands are sent one after the other, in order. `at_most_once` names the channels
    whose interrupted sends are given up (`after_crash: give_up`).
    """
    sender = CommandSender(renderer, connectors,
                           RetryPolicy(max_attempts, base_delay_s, max_delay_s), sleep=sleep,
                           at_most_once=at_most_once)
    options = WorkerOptions(owner=_owner(), concurrency=concurrency,
                            allow_backtest=allow_backtest)
    worker = DeliveryWorker(sender, ledger, options, on_event=on_event,
                            on_dead_letter=on_dead_letter, now=now)
    return worker.deliver(commands)


def _owner() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rate_buckets(config: DeliveryConfig) -> dict[str, TokenBucket]:
    """A token bucket for each channel the config gives a rate."""
    return {name: TokenBucket(channel.rate.rate_per_second, channel.rate.burst)
            for name, channel in config.channels.items() if channel.rate is not None}


def sender_for(config: DeliveryConfig, renderer: Renderer,
               sleep: Callable[[float], None] = time.sleep) -> CommandSender:
    """The sender for a loaded config: its connectors, retry settings and rates."""
    retry = RetryPolicy(config.retry.max_attempts, config.retry.base_delay_s,
                        config.retry.max_delay_s)
    return CommandSender(renderer, build_connectors(config), retry,
                         rates=rate_buckets(config), sleep=sleep,
                         at_most_once=config.at_most_once())


def _appender(file: IO[bytes]) -> EventSink:
    def append(record: dict[str, Any]) -> None:
        file.write(orjson.dumps(record) + b"\n")
        file.flush()
    return append


def _syncer(*files: IO[bytes]) -> Callable[[], None]:
    def sync() -> None:
        for file in files:
            sync_to_disk(file.fileno())
    return sync


def deliver_source(source: CommandSource, sender: CommandSender, ledger: Ledger,
                   events_out_path: Path | str, dead_letter_path: Path | str,
                   options: WorkerOptions, *, now: Callable[[], datetime] = utc_now,
                   on_worker: Callable[[DeliveryWorker], None] | None = None
                   ) -> DeliverySummary:
    """Run a worker over `source`; events and dead letters are appended to their files
    (flushed per record, synced before each commit of the source).

    `on_worker` receives the worker before it starts, to `stop()` it from a signal.
    """
    with open_for_append(events_out_path) as events, \
            open_for_append(dead_letter_path) as dead:
        worker = DeliveryWorker(sender, ledger, options, on_event=_appender(events),
                                on_dead_letter=_appender(dead), sync=_syncer(events, dead),
                                now=now)
        try:
            if on_worker is not None:
                on_worker(worker)
            return worker.run(source)
        finally:
            worker.close()


def deliver_file(commands_path: Path | str, events_out_path: Path | str,
                 dead_letter_path: Path | str, config_path: Path | str,
                 templates_dir: Path | str, ledger_path: Path | str, *,
                 renderer: Renderer | None = None, environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utc_now,
                 options: WorkerOptions | None = None) -> DeliverySummary:
    """Deliver a commands file; events and dead letters are appended to their files.

    `ledger_path` is a SQLite file or a `redis://` URL. Raises `DeliveryConfigError` for a
    bad config and `OSError` for unreadable files.
    """
    config = load_delivery_config(config_path, environ)
    if renderer is None:
        from connectors.delivery.templates import TemplateStore

        renderer = TemplateStore(Path(templates_dir))
    sender = sender_for(config, renderer, sleep)
    source = FileSource(commands_path)
    ledger = open_ledger(str(ledger_path))
    try:
        return deliver_source(source, sender, ledger, events_out_path, dead_letter_path,
                              options or WorkerOptions(owner=_owner()), now=now)
    finally:
        ledger.close()
        source.close()


def deliver_command(argv: list[str]) -> int:
    """`python -m connectors.delivery.service ARGS`, the same as `journeys deliver ARGS`."""
    from connectors.delivery.cli import deliver_main

    return deliver_main(argv)


if __name__ == "__main__":
    import sys

    sys.exit(deliver_command(sys.argv[1:]))
