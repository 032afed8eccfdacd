"""Delivering message commands: render, send with retries, record, and report back.

    summary = deliver_file("commands.jsonl", "message_events.jsonl", "dead_letters.jsonl",
                           "delivery.yaml", "templates", "ledger.sqlite")

Guarantees: at least once, and at most once per command id as far as the ledger knows.
A command already in the ledger as delivered is skipped, so replaying a commands file
never sends twice. A crash between a send and its ledger entry can resend that one
command; webhooks carry an `Idempotency-Key` and emails a stable `Message-ID` for that.
Every outcome becomes a `message` event for the engine; commands that cannot be delivered
go to the dead-letter file with the reason. Commands whose `send_at` is in the future are
sent now and counted as early: scheduling is not part of this tool.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from connectors.appending import open_for_append
from connectors.channels import STATUSES, Channel, DeliveryResult, Message, Status
from connectors.delivery_config import (
    DeliveryConfigError,
    build_connectors,
    load_delivery_config,
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
    "message_event",
]

logger = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]


class Renderer(Protocol):
    """Renders a message command; raises `ValueError` (such as `TemplateError`) on failure."""

    def render(self, command: dict[str, Any]) -> Message: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """`2025-03-03T10:00:00.000Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


# -- the ledger --------------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one command."""

    command_id: str
    status: Status
    attempts: int
    provider_id: str | None
    detail: str
    updated_at: str


class DeliveryLedger:
    """A SQLite file of command id → latest status, attempts, provider id and time."""

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS deliveries (
            command_id  TEXT PRIMARY KEY,
            status      TEXT NOT NULL,
            attempts    INTEGER NOT NULL,
            provider_id TEXT,
            detail      TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        )"""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, timeout=30.0)
        with self._db:
            self._db.execute(self._SCHEMA)

    def get(self, command_id: str) -> LedgerEntry | None:
        row = self._db.execute(
            "SELECT command_id, status, attempts, provider_id, detail, updated_at "
            "FROM deliveries WHERE command_id = ?", (command_id,)).fetchone()
        return LedgerEntry(*row) if row else None

    def is_delivered(self, command_id: str) -> bool:
        entry = self.get(command_id)
        return entry is not None and entry.status == "delivered"

    def mark(self, command_id: str, status: Status, attempts: int,
             provider_id: str | None = None, detail: str = "",
             at: datetime | None = None) -> LedgerEntry:
        """Record an outcome in one transaction; `attempts` adds to those recorded before."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if attempts < 0:
            raise ValueError(f"attempts cannot be negative: {attempts}")
        updated_at = iso_ms(at or utc_now())
        with self._db:
            self._db.execute(
                "INSERT INTO deliveries (command_id, status, attempts, provider_id, detail, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET "
                "status = excluded.status, attempts = deliveries.attempts + excluded.attempts, "
                "provider_id = COALESCE(excluded.provider_id, deliveries.provider_id), "
                "detail = excluded.detail, updated_at = excluded.updated_at",
                (command_id, status, attempts, provider_id, detail, updated_at))
        entry = self.get(command_id)
        assert entry is not None
        return entry

    def counts(self) -> dict[str, int]:
        """How many commands have each status."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {status: count for status, count in rows}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DeliveryLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- one command -------------------------------------------------------------------------

@dataclass
class DeliverySummary:
    """What a delivery run did; `dead_lettered` includes the `invalid` lines."""

    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    early: int = 0
    invalid: int = 0
    attempts: int = 0

    def line(self) -> str:
        return (f"{self.delivered} delivered, {self.failed} failed, {self.bounced} bounced, "
                f"{self.dead_lettered} dead-lettered, {self.skipped} skipped as already "
                f"delivered, {self.early} sent before send_at, {self.invalid} invalid, "
                f"{self.attempts} attempts")


def backoff_delay(command_id: str, attempt: int, base_delay_s: float,
                  max_delay_s: float) -> float:
    """The wait after failed attempt `attempt` (1-based): doubling, capped, with jitter.

    The jitter is a factor in [0.5, 1) drawn from the command id and attempt, so runs
    are reproducible while different commands spread out.
    """
    digest = hashlib.sha256(f"{command_id}:{attempt}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    delay = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
    return delay * (0.5 + 0.5 * fraction)


def message_event(command: Mapping[str, Any], status: Status, at: datetime) -> dict[str, Any]:
    """The engine's `message` event for a command's outcome."""
    command_id = str(command["command_id"])
    return {
        "event_id": f"msg-{command_id}-{status}",
        "customer_id": str(command["customer_id"]),
        "type": "message",
        "ts": iso_ms(at),
        "status": status,
        "command_id": command_id,
        "channel": command.get("channel"),
        "journey": command.get("journey"),
    }


def _problem(command: Any) -> str | None:
    """Why `command` is not a message command that can be reported on, or None."""
    if not isinstance(command, dict):
        return f"a message command must be a JSON object, not {type(command).__name__}"
    for name in ("command_id", "customer_id", "channel"):
        value = command.get(name)
        if not isinstance(value, str) or not value:
            return f"missing or empty '{name}'"
    return None


def _is_early(command: Mapping[str, Any], now: datetime) -> bool:
    send_at = command.get("send_at")
    if not isinstance(send_at, str):
        return False
    try:
        moment = datetime.fromisoformat(send_at)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment > now


@dataclass
class _Retry:
    max_attempts: int
    base_delay_s: float
    max_delay_s: float
    sleep: Callable[[float], None]


def _send(connector: Channel, command: dict[str, Any], message: Message,
          retry: _Retry) -> tuple[DeliveryResult, int]:
    """Send, retrying retryable failures; the last result and the attempts made."""
    command_id = str(command["command_id"])
    result = DeliveryResult.failed("not attempted", retryable=False)
    for attempt in range(1, retry.max_attempts + 1):
        try:
            result = connector.send(command, message)
        except Exception as exc:  # a connector bug must not stop the other commands
            logger.error("command %s: connector raised %s", command_id, type(exc).__name__)
            return DeliveryResult.failed(f"connector raised {type(exc).__name__}",
                                         retryable=False), attempt
        if result.status != "failed" or not result.retryable:
            return result, attempt
        if attempt < retry.max_attempts:
            delay = backoff_delay(command_id, attempt, retry.base_delay_s, retry.max_delay_s)
            delay = max(delay, result.retry_after_s or 0.0)
            logger.info("command %s: attempt %d failed (%s); retrying in %.2fs", command_id,
                        attempt, result.detail, delay)
            retry.sleep(delay)
    return result, retry.max_attempts


def deliver(commands: Iterable[Any], renderer: Renderer, connectors: Mapping[str, Channel],
            ledger: DeliveryLedger, *, max_attempts: int = 5, base_delay_s: float = 0.5,
            max_delay_s: float = 60.0, sleep: Callable[[float], None] = time.sleep,
            now: Callable[[], datetime] = utc_now, on_event: EventSink | None = None,
            on_dead_letter: EventSink | None = None) -> DeliverySummary:
    """Deliver each command once; report outcomes to `on_event`, failures to `on_dead_letter`.

    For every command the `message` event is handed over before the ledger records the
    outcome, so an outcome is never recorded without its event.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    retry = _Retry(max_attempts, base_delay_s, max_delay_s, sleep)
    summary = DeliverySummary()

    def dead_letter(command: Any, reason: str, status: str, attempts: int) -> None:
        summary.dead_lettered += 1
        if on_dead_letter is not None:
            record = {"reason": reason, "status": status, "attempts": attempts,
                      "ts": iso_ms(now()), "command": command}
            if isinstance(command, dict):
                record["command_id"] = command.get("command_id")
                record["channel"] = command.get("channel")
            on_dead_letter(record)

    for command in commands:
        problem = _problem(command)
        if problem is not None:
            summary.invalid += 1
            dead_letter(command, problem, "invalid", 0)
            logger.warning("invalid message command: %s", problem)
            continue
        command_id = command["command_id"]
        if ledger.is_delivered(command_id):
            summary.skipped += 1
            logger.info("command %s: already delivered, skipped", command_id)
            continue
        if _is_early(command, now()):
            summary.early += 1
        result, attempts = _attempt(command, renderer, connectors, retry)
        summary.attempts += attempts
        if on_event is not None:
            on_event(message_event(command, result.status, now()))
        if result.status == "failed":
            reason = result.detail if attempts <= 1 else \
                f"{result.detail} (after {attempts} attempts)"
            dead_letter(command, reason, result.status, attempts)
        ledger.mark(command_id, result.status, attempts, result.provider_id, result.detail,
                    now())
        if result.status == "delivered":
            summary.delivered += 1
        elif result.status == "bounced":
            summary.bounced += 1
        else:
            summary.failed += 1
        logger.info("command %s via %s: %s after %d attempt(s): %s", command_id,
                    command["channel"], result.status, attempts, result.detail)
    return summary


def _attempt(command: dict[str, Any], renderer: Renderer, connectors: Mapping[str, Channel],
             retry: _Retry) -> tuple[DeliveryResult, int]:
    """Render and send one command: the outcome and the attempts made."""
    channel = command["channel"]
    connector = connectors.get(channel)
    if connector is None:
        return DeliveryResult.failed(f"no connector is configured for channel '{channel}'",
                                     retryable=False), 0
    try:
        message = renderer.render(command)
    except ValueError as exc:
        reason = getattr(exc, "message", None) or str(exc)
        return DeliveryResult.failed(f"cannot render: {reason}", retryable=False), 0
    return _send(connector, command, message, retry)


# -- files and the command line ----------------------------------------------------------

def _read_commands(path: Path, on_invalid: Callable[[dict[str, Any]], None]) -> Iterator[Any]:
    """Decoded lines of a JSONL file; lines that are not JSON go to `on_invalid`."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                on_invalid({"reason": f"not valid JSON: {exc}", "status": "invalid",
                            "line": number, "raw": line.decode("utf-8", "replace").rstrip()})


def _appender(file: IO[bytes]) -> EventSink:
    def append(record: dict[str, Any]) -> None:
        file.write(orjson.dumps(record) + b"\n")
        file.flush()
        os.fsync(file.fileno())
    return append


def deliver_file(commands_path: Path | str, events_out_path: Path | str,
                 dead_letter_path: Path | str, config_path: Path | str,
                 templates_dir: Path | str, ledger_path: Path | str, *,
                 renderer: Renderer | None = None, environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utc_now) -> DeliverySummary:
    """Deliver a commands file; events and dead letters are appended to their files.

    Raises `DeliveryConfigError` for a bad config and `OSError` for unreadable files.
    """
    config = load_delivery_config(config_path, environ)
    connectors = build_connectors(config)
    if renderer is None:
        from connectors.templates import TemplateStore

        renderer = TemplateStore(Path(templates_dir))
    invalid = 0
    with open_for_append(events_out_path) as events, open_for_append(dead_letter_path) as dead, \
            DeliveryLedger(ledger_path) as ledger:
        write_dead = _appender(dead)

        def on_invalid(record: dict[str, Any]) -> None:
            nonlocal invalid
            invalid += 1
            write_dead(record)

        summary = deliver(_read_commands(Path(commands_path), on_invalid), renderer,
                          connectors, ledger, max_attempts=config.retry.max_attempts,
                          base_delay_s=config.retry.base_delay_s,
                          max_delay_s=config.retry.max_delay_s, sleep=sleep, now=now,
                          on_event=_appender(events), on_dead_letter=write_dead)
    summary.invalid += invalid
    summary.dead_lettered += invalid
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.delivery",
        description="Send message commands through the configured channels.")
    parser.add_argument("--commands", required=True, help="message commands, JSON Lines")
    parser.add_argument("--config", required=True, help="delivery config, YAML or JSON")
    parser.add_argument("--templates", required=True, help="the message templates folder")
    parser.add_argument("--events-out", required=True,
                        help="where `message` events are appended (feed to journeys run)")
    parser.add_argument("--dead-letter", required=True,
                        help="where undeliverable commands are appended, with the reason")
    parser.add_argument("--ledger", required=True, help="SQLite ledger of deliveries")
    return parser


def deliver_command(argv: Sequence[str]) -> int:
    """The command line: 0 when nothing was dead-lettered, 1 when some was, 2 on errors."""
    args = _parser().parse_args(list(argv))
    try:
        summary = deliver_file(args.commands, args.events_out, args.dead_letter, args.config,
                               args.templates, args.ledger)
    except DeliveryConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 1 if summary.dead_lettered else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(deliver_command(sys.argv[1:]))
