"""The delivery worker: reads commands, holds the early ones, sends the due ones
concurrently, records each outcome, and only then lets its source move on.

    worker = DeliveryWorker(sender, ledger, WorkerOptions(owner="mail-1"),
                            on_event=write_event, on_dead_letter=write_dead)
    summary = worker.run(FileSource("commands.jsonl"))

Per batch of commands read:

1. A command whose `send_at` is in the future is written to the ledger (`hold`) and not
   sent; it is claimed from the ledger once due, by this worker or any other sharing the
   ledger, also after a restart.
2. A due command is claimed in the ledger; a command another worker claimed, or one
   already delivered, is skipped. Two workers reading the same file or topic therefore
   send each command once.
3. Claimed commands are sent by a pool of `concurrency` threads, each send waiting for
   its channel's rate. For each, the `message` event is written before the ledger records
   the outcome, so an outcome is never recorded without its event.
4. The events file is synced and then the source commits (Kafka offsets): a worker killed
   before that reads the batch again, and the ledger skips what it finished.

After a crash, per channel (`after_crash` in the config, `CommandSender.at_most_once`):

- `resend` (at least once): a worker killed between a send and its ledger entry sends
  that command again once its claim's lease ends (at once when restarted with the same
  `owner`). Every send carries the command id for the receiver to drop such a repeat.
- `give_up` (at most once): the ledger marks the command attempted just before its first
  network call. A command claimed again with that mark is not sent: it is dead-lettered
  with status `unknown` and recorded so in the ledger, and counted in the summary. One
  claimed but never attempted (queued in the pool, waiting for its rate) is sent
  normally. No `message` event is written for it: its outcome is not known.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.delivery.channels import Status
from connectors.delivery.ledger import UNKNOWN, Ledger, iso_ms
from connectors.delivery.send import (
    CommandSender,
    command_problem,
    due_ms,
    from_backtest,
    message_event,
)
from connectors.delivery.sources import CommandSource, Incoming
from connectors.delivery.stop_request import StopRequest
from engine.errors import JourneysError

__all__ = [
    "GIVEN_UP",
    "BacktestCommandRefused",
    "DeliverySummary",
    "DeliveryWorker",
    "EventSink",
    "WorkerOptions",
    "utc_now",
]

logger = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]

GIVEN_UP = "the worker stopped during the send; not sent again (after_crash: give_up)"
"""The reason of an `unknown` dead letter."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class BacktestCommandRefused(JourneysError):
    """A command written by `journeys backtest` reached a worker not told to send those."""

    code = "backtest_command_refused"


@dataclass
class DeliverySummary:
    """What a delivery run did; `dead_lettered` includes the `invalid` and `unknown`
    commands."""

    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    held: int = 0
    invalid: int = 0
    unknown: int = 0
    """Sends a crash interrupted on an `after_crash: give_up` channel: not sent again."""
    attempts: int = 0

    def line(self) -> str:
        return (f"{self.delivered} delivered, {self.failed} failed, {self.bounced} bounced, "
                f"{self.dead_lettered} dead-lettered, {self.skipped} skipped as already "
                f"delivered or claimed, {self.held} held until send_at, {self.invalid} "
                f"invalid, {self.unknown} unknown after a crash, {self.attempts} attempts")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker claims and sends; `owner` names it in the ledger's claims."""

    owner: str
    concurrency: int = 64
    """Sends in flight at once (threads)."""
    batch_size: int = 500
    """Commands read, claimed and sent between two commits of the source."""
    lease_s: float = 300.0
    """How long a claim keeps other workers off a command; longer than the slowest send
    with its retries."""
    serve: bool = False
    """Keep running after the source is read: send held commands as they come due."""
    allow_backtest: bool = False
    """Send commands a backtest wrote (refused otherwise)."""
    idle_wait_s: float = 1.0
    """Longest pause when there is nothing to do while serving."""


class DeliveryWorker:
    """One delivery worker; see the module's docstring for what it guarantees."""

    def __init__(self, sender: CommandSender, ledger: Ledger, options: WorkerOptions, *,
                 on_event: EventSink | None = None, on_dead_letter: EventSink | None = None,
                 sync: Callable[[], None] | None = None,
                 now: Callable[[], datetime] = utc_now) -> None:
        if options.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {options.concurrency}")
        self.sender = sender
        self.ledger = ledger
        self.options = options
        self.summary = DeliverySummary()
        self._on_event = on_event
        self._on_dead_letter = on_dead_letter
        self._sync = sync
        self._now = now
        self._lock = threading.Lock()
        self._stop = StopRequest()

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (a signal handler may call it)."""
        self._stop.set()

    def run(self, source: CommandSource) -> DeliverySummary:
        """Deliver from `source` until it is read and nothing held is due (or, serving,
        until `stop`)."""
        self.ledger.release(self.options.owner)
        pool = ThreadPoolExecutor(self.options.concurrency, "deliver") \
            if self.options.concurrency > 1 else None
        try:
            while not self._stop.is_set():
                batch = [] if source.exhausted else source.next_batch(
                    self.options.batch_size, 0.0 if self._busy() else 0.2)
                sent = self._handle(batch, pool)
                if self._sync is not None:
                    self._sync()
                source.commit()
                if source.exhausted and not batch and not sent:
                    if not self.options.serve:
                        break
                    self._stop.wait(self._idle_wait())
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return self.summary

    def close(self) -> None:
        """Release what `stop` uses to wake `run`."""
        self._stop.close()

    def deliver(self, commands: Iterable[Any]) -> DeliverySummary:
        """Deliver already decoded commands, one batch at a time, then the due held ones."""
        pool = ThreadPoolExecutor(self.options.concurrency, "deliver") \
            if self.options.concurrency > 1 else None
        try:
            batch: list[Incoming] = []
            for number, command in enumerate(commands, start=1):
                batch.append(Incoming(command, b"", f"command {number}"))
                if len(batch) >= self.options.batch_size:
                    self._handle(batch, pool)
                    batch = []
            while self._handle(batch, pool):
                batch = []
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return self.summary

    # -- one batch ----------------------------------------------------------------------

    def _busy(self) -> bool:
        due = self.ledger.next_due_ms()
        return due is not None and due <= self._now_ms()

    def _idle_wait(self) -> float:
        due = self.ledger.next_due_ms()
        wait = self.options.idle_wait_s
        if due is not None:
            wait = min(wait, max(0.0, (due - self._now_ms()) / 1000))
        return max(wait, 0.01)

    def _now_ms(self) -> int:
        return int(self._now().timestamp() * 1000)

    def _handle(self, batch: list[Incoming], pool: ThreadPoolExecutor | None) -> int:
        """Hold, claim and send a batch plus the held commands now due; how many were sent."""
        now_ms = self._now_ms()
        due: dict[str, dict[str, Any]] = {}
        for item in batch:
            command = self._admit(item, now_ms)
            if command is None:
                continue
            if command["command_id"] in due:
                self.summary.skipped += 1  # the same command twice in one batch
            else:
                due[command["command_id"]] = command
        taken = self.ledger.claim(list(due), self.options.owner, self.options.lease_s) \
            if due else set()
        self.summary.skipped += len(due) - len(taken)
        claimed = [command for command_id, command in due.items() if command_id in taken]
        room = max(self.options.batch_size - len(claimed), 1)
        for raw in self.ledger.claim_due(self.options.owner, self.options.lease_s, room,
                                         now_ms):
            claimed.append(orjson.loads(raw))
        claimed = self._without_interrupted(claimed)
        if pool is not None:
            # one wait for the whole batch rather than a wake-up of this thread per result
            futures = [pool.submit(self._deliver_one, command) for command in claimed]
            wait(futures)
            outcomes = [future.result() for future in futures]
        else:
            outcomes = [self._deliver_one(command) for command in claimed]
        for status, attempts in outcomes:
            self.summary.attempts += attempts
            if status == "delivered":
                self.summary.delivered += 1
            elif status == "bounced":
                self.summary.bounced += 1
            else:
                self.summary.failed += 1
        return len(claimed)

    def _admit(self, item: Incoming, now_ms: int) -> dict[str, Any] | None:
        """The command when it is due (to be claimed); holds, dead-letters or refuses it
        otherwise."""
        problem = item.problem or command_problem(item.command)
        if problem is not None:
            self.summary.invalid += 1
            logger.warning("%s: invalid message command: %s", item.where, problem)
            self._dead_letter(item.command, problem, "invalid", 0, item)
            return None
        command: dict[str, Any] = item.command
        command_id = command["command_id"]
        if from_backtest(command) and not self.options.allow_backtest:
            raise BacktestCommandRefused(
                f"command {command_id} was written by a backtest (origin: backtest); "
                "give --allow-backtest to send such commands", file=item.where)
        due = due_ms(command)
        if due is not None and due > now_ms:
            raw = item.raw or orjson.dumps(command)
            if self.ledger.hold(command_id, due, raw):
                self.summary.held += 1
            else:
                self.summary.skipped += 1
            return None
        return command

    def _without_interrupted(self, claimed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`claimed` less the at-most-once commands whose send a crash interrupted; those
        are given up (one ledger read per batch, only when such channels are claimed)."""
        watched = [command["command_id"] for command in claimed
                   if command["channel"] in self.sender.at_most_once]
        interrupted = self.ledger.interrupted(watched) if watched else set()
        if not interrupted:
            return claimed
        for command in claimed:
            if command["command_id"] in interrupted:
                self._give_up(command)
        return [command for command in claimed if command["command_id"] not in interrupted]

    def _give_up(self, command: dict[str, Any]) -> None:
        """Dead-letter, then record `unknown`: a kill between the two gives up again."""
        command_id = command["command_id"]
        self._dead_letter(command, GIVEN_UP, UNKNOWN, 0)
        self.ledger.record_unknown(command_id, GIVEN_UP, self._now())
        with self._lock:
            self.summary.unknown += 1
        logger.warning("command %s via %s: %s", command_id, command["channel"], GIVEN_UP)

    def _deliver_one(self, command: dict[str, Any]) -> tuple[Status, int]:
        command_id = command["command_id"]
        before_send = None
        if command["channel"] in self.sender.at_most_once:
            def before_send() -> None:
                self.ledger.attempt(command_id)
        result, attempts = self.sender.send(command, before_send)
        if self._on_event is not None:
            event = message_event(command, result.status, self._now())
            with self._lock:
                self._on_event(event)
        if result.status == "failed":
            reason = result.detail if attempts <= 1 else \
                f"{result.detail} (after {attempts} attempts)"
            self._dead_letter(command, reason, result.status, attempts)
        self.ledger.record(command_id, result.status, attempts, result.provider_id,
                           result.detail, self._now())
        logger.info("command %s via %s: %s after %d attempt(s): %s", command_id,
                    command["channel"], result.status, attempts, result.detail)
        return result.status, attempts

    def _dead_letter(self, command: Any, reason: str, status: str, attempts: int,
                     item: Incoming | None = None) -> None:
        with self._lock:
            self.summary.dead_lettered += 1
            if self._on_dead_letter is None:
                return
            record: dict[str, Any] = {"reason": reason, "status": status,
                                      "attempts": attempts, "ts": iso_ms(self._now()),
                                      "command": command}
            if isinstance(command, dict):
                record["command_id"] = command.get("command_id")
                record["channel"] = command.get("channel")
            if item is not None and item.problem is not None:
                record["where"] = item.where
                record["raw"] = item.raw.decode("utf-8", "replace")
            self._on_dead_letter(record)

