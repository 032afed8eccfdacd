"""A Bytewax-native baseline: the lost-regular journey written directly as a `stateful` step.

The journey is examples/journeys/02_lost_regular.yaml by hand: a visit that leaves a customer
with 4 or more visits in the past 90 days arms an entry 45 days later; on entry an email, on
day 15 a 10 EUR voucher (valid 7 days) with an email, on day 22 an SMS unless the voucher was
redeemed; any visit ends the journey; re-entry 90 days after leaving; 10% holdout (enrolled,
sent nothing). Each customer's visit times, enrollment and voucher live in Bytewax state, and
its next timer is a pending `notify_at`.

Timers and time: journeys run on event time, `notify_at` on the system clock. The decode step
keeps the event clock (the latest event time read) in an object the stateful logic shares;
`bytewax.testing.run_main` runs a single worker in this process, so both see one value. A
customer's `notify_at` is `now + (due - event clock)`, capped at `horizon_s` of wall time:
a timer already passed by the event clock is due now; any other is re-checked after the
horizon, since the event clock can pass it without an event for that customer. `on_notify`
fires only what is due at the event clock, so nothing fires early in event time; at the end
of the input, `on_eof` fires what the final clock has passed and unschedules the customer.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import StatefulLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main

from benchmarks.naive import BaselineResult
from engine.core.timeutil import iso_to_ms

DAY_MS = 86_400_000
JOURNEY = "lost_regular"
REGULAR_VISITS = 4
VISIT_WINDOW_MS = 90 * DAY_MS
INACTIVE_MS = 45 * DAY_MS
INCENTIVE_MS = 15 * DAY_MS
REMINDER_MS = 22 * DAY_MS
VOUCHER_VALID_MS = 7 * DAY_MS
RE_ENTRY_MS = 90 * DAY_MS
HOLDOUT = 0.10
HORIZON_S = 0.1
BATCH_LINES = 1000

Command = dict[str, Any]


@dataclass
class _Clock:
    """The event clock shared by the decode step and the stateful logic of one worker."""

    now_ms: int = 0
    eof: bool = False


@dataclass
class _Counter:
    value: int = 0


@dataclass
class CustomerJourney:
    """One customer's Bytewax state: recent visits, the armed entry, the enrollment."""

    customer_id: str = ""
    visits: list[int] = field(default_factory=list)
    armed: int | None = None
    seq: int = 0
    entered_at: int | None = None
    step: int = 0
    step_due: int | None = None
    ended_at: int | None = None
    holdout: bool = False
    voucher: str | None = None
    voucher_expires: int | None = None
    redeemed: bool = False


class _LostRegular(StatefulLogic[dict[str, Any], Command, CustomerJourney]):
    """The journey for one customer, keyed by `customer_id`."""

    def __init__(self, state: CustomerJourney | None, clock: _Clock, holdout: float,
                 horizon: timedelta) -> None:
        self.state = state if state is not None else CustomerJourney()
        self.clock = clock
        self.holdout = holdout
        self.horizon = horizon
        self.finished = False

    def on_item(self, value: dict[str, Any]) -> tuple[Iterable[Command], bool]:
        ts: int = value["ts"]
        state = self.state
        state.customer_id = value["customer_id"]
        out = self._fire(ts)
        kind = value["type"]
        if kind == "visit":
            if state.step_due is not None:
                self._end(ts)
            visits = [t for t in state.visits if t > ts - VISIT_WINDOW_MS]
            visits.append(ts)
            state.visits = visits
            state.armed = ts + INACTIVE_MS if len(visits) >= REGULAR_VISITS else None
        elif (kind == "voucher_redeemed" and state.voucher is not None
              and value.get("voucher_id") == state.voucher and not state.redeemed
              and state.voucher_expires is not None and ts <= state.voucher_expires):
            state.redeemed = True
        return out, StatefulLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[Command], bool]:
        return self._fire(self.clock.now_ms), StatefulLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[Command], bool]:
        self.finished = True
        return self._fire(self.clock.now_ms), StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        due = self._next_due()
        if due is None or self.finished:
            return None
        now = datetime.now(UTC)
        ahead_ms = due - self.clock.now_ms
        if ahead_ms <= 0:
            return now
        return now + min(timedelta(milliseconds=ahead_ms), self.horizon)

    def snapshot(self) -> CustomerJourney:
        return replace(self.state, visits=list(self.state.visits))

    def _next_due(self) -> int | None:
        armed, step_due = self.state.armed, self.state.step_due
        if armed is None:
            return step_due
        return armed if step_due is None else min(armed, step_due)

    def _fire(self, until: int) -> list[Command]:
        """Run every timer due at or before `until`, in due order."""
        out: list[Command] = []
        state = self.state
        while True:
            due = self._next_due()
            if due is None or due > until:
                return out
            if state.step_due == due:
                self._step(due, out)
            else:
                state.armed = None
                self._enter(due, out)

    def _enter(self, at: int, out: list[Command]) -> None:
        state = self.state
        if state.step_due is not None:
            return
        if state.ended_at is not None and at < state.ended_at + RE_ENTRY_MS:
            return
        state.seq += 1
        state.entered_at = at
        state.step = 0
        state.ended_at = None
        state.voucher = state.voucher_expires = None
        state.redeemed = False
        state.holdout = _fraction(self.state.customer_id, state.seq) < self.holdout
        state.step_due = at
        self._step(at, out)

    def _step(self, at: int, out: list[Command]) -> None:
        state = self.state
        entered = state.entered_at if state.entered_at is not None else at
        if state.step == 0:
            self._send(out, "miss_you", "email", "lost_regular_miss_you", at, {})
            state.step, state.step_due = 1, entered + INCENTIVE_MS
        elif state.step == 1:
            state.voucher = f"{self.state.customer_id}-{JOURNEY}-{state.seq}-ten_off"
            state.voucher_expires = at + VOUCHER_VALID_MS
            self._send(out, "incentive", "email", "lost_regular_ten_off", at,
                       {"code": state.voucher, "expires_at": state.voucher_expires})
            state.step, state.step_due = 2, entered + REMINDER_MS
        else:
            if not state.redeemed:
                self._send(out, "last_reminder", "sms", "lost_regular_last_reminder", at,
                           {"code": state.voucher})
            self._end(at)

    def _end(self, at: int) -> None:
        self.state.step_due = None
        self.state.ended_at = at

    def _send(self, out: list[Command], step: str, channel: str, template: str, at: int,
              variables: dict[str, Any]) -> None:
        if self.state.holdout:
            return
        out.append({
            "command_id": f"{self.state.customer_id}:{JOURNEY}:{self.state.seq}:{step}",
            "customer_id": self.state.customer_id, "journey": JOURNEY, "step": step,
            "channel": channel, "template": template, "send_at": at, "vars": variables,
        })


def _fraction(customer_id: str, seq: int) -> float:
    """A stable number in [0, 1): the holdout draw of a customer's enrollment."""
    digest = hashlib.blake2b(f"{JOURNEY}|{customer_id}|{seq}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def _event_ms(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    return iso_to_ms(value)


class _LinesPartition(StatefulSourcePartition[bytes, int]):
    """Lines of a file from a byte offset, `BATCH_LINES` at a time, up to a line limit."""

    def __init__(self, path: Path, offset: int, limit: int | None, read: _Counter) -> None:
        self.file: BinaryIO = path.open("rb")
        self.file.seek(offset)
        self.limit = limit
        self.read = read

    def next_batch(self) -> list[bytes]:
        want = BATCH_LINES
        if self.limit is not None:
            want = min(want, self.limit - self.read.value)
        batch: list[bytes] = []
        readline = self.file.readline
        while len(batch) < want:
            line = readline()
            if not line:
                break
            if line.strip():
                batch.append(line)
        if not batch:
            raise StopIteration
        self.read.value += len(batch)
        return batch

    def snapshot(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()


class _LinesSource(FixedPartitionedSource[bytes, int]):
    """A JSONL file as one partition."""

    def __init__(self, path: Path, limit: int | None, read: _Counter) -> None:
        self.path = path
        self.limit = limit
        self.read = read

    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> _LinesPartition:
        return _LinesPartition(self.path, resume_state or 0, self.limit, self.read)


class _CountingPartition(StatelessSinkPartition[tuple[str, Command]]):
    def __init__(self, count: _Counter, on_command: Callable[[Command], None] | None) -> None:
        self.count = count
        self.on_command = on_command

    def write_batch(self, items: list[tuple[str, Command]]) -> None:
        self.count.value += len(items)
        if self.on_command is not None:
            for _, command in items:
                self.on_command(command)


class _CountingSink(DynamicSink[tuple[str, Command]]):
    """Counts the commands (and hands each to `on_command` when given)."""

    def __init__(self, count: _Counter, on_command: Callable[[Command], None] | None) -> None:
        self.count = count
        self.on_command = on_command

    def build(self, step_id: str, worker_index: int,
              worker_count: int) -> _CountingPartition:
        return _CountingPartition(self.count, self.on_command)


def build_flow(events_path: Path, read: _Counter, sent: _Counter, *,
               limit_events: int | None = None, holdout: float = HOLDOUT,
               horizon_s: float = HORIZON_S,
               on_command: Callable[[Command], None] | None = None) -> Dataflow:
    """The dataflow: JSONL lines -> decoded events -> per-customer journey -> counting sink."""
    clock = _Clock()
    horizon = timedelta(seconds=horizon_s)

    def decode(line: bytes) -> dict[str, Any] | None:
        try:
            event = orjson.loads(line)
            event["ts"] = ts = _event_ms(event["ts"])
            event["customer_id"] = str(event["customer_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if ts > clock.now_ms:
            clock.now_ms = ts
        return event

    def build(state: CustomerJourney | None) -> _LostRegular:
        return _LostRegular(state, clock, holdout, horizon)

    flow = Dataflow("lost_regular_native")
    lines = op.input("events", flow, _LinesSource(Path(events_path), limit_events, read))
    events = op.filter_map("decode", lines, decode)
    keyed = op.key_on("customer", events, lambda event: event["customer_id"])
    commands = op.stateful("journey", keyed, build)
    op.output("commands", commands, _CountingSink(sent, on_command))
    return flow


def run_bytewax_native(events_path: Path, *, limit_events: int | None = None,
                       holdout: float = HOLDOUT, horizon_s: float = HORIZON_S,
                       on_command: Callable[[Command], None] | None = None) -> BaselineResult:
    """Run the hand-written lost-regular flow in this process over (the first `limit_events`
    lines of) the events file; message commands go to `on_command` when given."""
    read, sent = _Counter(), _Counter()
    began = time.perf_counter()
    flow = build_flow(events_path, read, sent, limit_events=limit_events, holdout=holdout,
                      horizon_s=horizon_s, on_command=on_command)
    run_main(flow)
    return BaselineResult(read.value, time.perf_counter() - began, sent.value)


def main(argv: list[str] | None = None) -> None:
    """Run the Bytewax-native baseline once and print its rate."""
    parser = argparse.ArgumentParser(description="Bytewax-native lost-regular baseline")
    parser.add_argument("events", type=Path)
    parser.add_argument("--limit-events", type=int, default=None)
    args = parser.parse_args(argv)
    result = run_bytewax_native(args.events, limit_events=args.limit_events)
    print(f"bytewax-native: {result.events} events in {result.seconds:.2f} s = "
          f"{result.events_per_s:,.0f} events/s, {result.commands} commands")


if __name__ == "__main__":
    main()
