"""A naive baseline: the engine's journeys with per-event Redis I/O and one key per timer.

The journey logic is the engine's own (`JourneyRuntime`), so the behaviour is the same; only
the storage is written the way a first version usually is:

- for every event: GET the customer's state, apply the event, SET the state back, and SET
  (or DEL) the customer's timer key, each its own round trip, with no pipelining;
- timers: one key `<prefix>:timer:<customer_id>` per customer with a pending timer, its value
  the due time in epoch ms;
- a poller, every `poll_every` events and once at the end: SCAN all timer keys, GET each, and
  for the due ones GET the state, fire its timers, SET the state and SET/DEL the timer key.

The event clock is the latest event time read. Venue and population aggregates stay in the
process's memory. Run `python -m benchmarks.naive EVENTS JOURNEY...` for a quick measurement.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from engine.core.aggregates import Aggregates
from engine.core.catalog import Catalog
from engine.core.decoding import decode_line
from engine.core.events import EventError
from engine.core.runtime import DuplicateEvent, Effects, JourneyRuntime
from engine.core.scope import ScopeContext
from engine.core.state import CustomerState
from engine.scoring.customer_scores import score_state
from engine.scoring.kernels import warm_up
from engine.storage.redis_client import connect
from engine.storage.store import delete_matching
from journeys_dsl.loader import load_journeys

POLL_EVERY = 1000
"""Events between two sweeps of the timer keys."""


@dataclass(frozen=True)
class BaselineResult:
    """Totals of a baseline run: events read, wall seconds, message commands emitted."""

    events: int
    seconds: float
    commands: int
    round_trips: int = 0
    """Redis requests made (0 where the baseline does not use Redis)."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class _NaiveStore:
    """One Redis request per call: state and timer keys of single customers."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.timer_prefix = f"{prefix}:timer:"
        self.round_trips = 0

    def load(self, customer_id: str) -> CustomerState:
        self.round_trips += 1
        raw = self.client.get(f"{self.prefix}:state:{customer_id}")
        return CustomerState.from_bytes(customer_id, raw)  # type: ignore[arg-type]

    def save(self, state: CustomerState, old_due: int | None) -> None:
        self.round_trips += 1
        self.client.set(f"{self.prefix}:state:{state.customer_id}", state.to_bytes())
        due = state.next_due()
        if due == old_due:
            return
        self.round_trips += 1
        if due is None:
            self.client.delete(self.timer_prefix + state.customer_id)
        else:
            self.client.set(self.timer_prefix + state.customer_id, due)

    def due_customers(self, clock: int) -> list[str]:
        """SCAN every timer key and GET each; the customers whose timer is due."""
        due: list[str] = []
        cursor = 0
        while True:
            self.round_trips += 1
            cursor, keys = self.client.scan(cursor, match=self.timer_prefix + "*", count=1000)
            for key in keys:
                self.round_trips += 1
                value = self.client.get(key)
                if value is not None and int(value) <= clock:
                    name = key.decode() if isinstance(key, bytes) else str(key)
                    due.append(name[len(self.timer_prefix):])
            if cursor == 0:
                return due


def run_naive(events_path: Path, journeys: list[str], redis_url: str, prefix: str, *,
              limit_s: float | None = None, poll_every: int = POLL_EVERY,
              on_command: Callable[[dict[str, Any]], None] | None = None) -> BaselineResult:
    """Run `journeys` over the events file with naive Redis I/O under `prefix`.

    Stops after `limit_s` seconds when given (compare rates, not totals, then). Every message
    command is passed to `on_command` when given. Keys under `prefix` are left in place.
    """
    runtime = JourneyRuntime(Catalog(load_journeys(journeys)))
    warm_up()
    ctx = runtime.context(Aggregates())
    client = connect(redis_url)
    store = _NaiveStore(client, prefix)
    events = commands = 0
    clock = 0
    began = time.perf_counter()
    deadline = None if limit_s is None else began + limit_s

    def emit(effects: Effects) -> None:
        nonlocal commands
        commands += len(effects.commands)
        if on_command is not None:
            for command in effects.commands:
                on_command(command)

    try:
        with Path(events_path).open("rb") as lines:
            for position, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                events += 1
                try:
                    event = decode_line(line.rstrip(b"\r\n"), position)
                except EventError:
                    continue
                clock = max(clock, event.ts)
                state = store.load(event.customer_id)
                old_due = state.next_due()
                score_state(state, clock, runtime.score_model)
                effects = Effects()
                try:
                    runtime.apply_event(state, event, ctx, effects)
                except DuplicateEvent:
                    continue
                store.save(state, old_due)
                emit(effects)
                if events % poll_every == 0:
                    _poll(runtime, store, ctx, clock, emit)
                    if deadline is not None and time.perf_counter() >= deadline:
                        break
            else:
                _poll(runtime, store, ctx, clock, emit)
    finally:
        client.close()
    return BaselineResult(events, time.perf_counter() - began, commands, store.round_trips)


def _poll(runtime: JourneyRuntime, store: _NaiveStore, ctx: ScopeContext, clock: int,
          emit: Callable[[Effects], None]) -> None:
    """Fire the timers of every customer whose timer key is due at `clock`."""
    for customer_id in store.due_customers(clock):
        state = store.load(customer_id)
        old_due = state.next_due()
        score_state(state, clock, runtime.score_model)
        effects = Effects()
        runtime.fire_due(state, clock, ctx, effects)
        store.save(state, old_due)
        emit(effects)


def delete_keys(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix`; return how many."""
    client = connect(redis_url)
    try:
        return delete_matching(client, f"{prefix}:*")
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    """Run the naive baseline once and print its rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("events", type=Path)
    parser.add_argument("journeys", nargs="+")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default=f"naive-{int(time.time())}")
    parser.add_argument("--limit-s", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        result = run_naive(args.events, args.journeys, args.redis_url, args.prefix,
                           limit_s=args.limit_s)
    finally:
        delete_keys(args.redis_url, args.prefix)
    print(f"naive: {result.events} events in {result.seconds:.2f} s = "
          f"{result.events_per_s:,.0f} events/s, {result.commands} commands, "
          f"{result.round_trips} Redis requests")


if __name__ == "__main__":
    main()
