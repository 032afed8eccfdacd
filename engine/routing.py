"""From raw input lines to per-shard batches: decoding, clocks, dead letters, sharding."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.events import EventError, decode_line
from engine.processor import DeadLetter, ShardBatch
from engine.timeutil import DAY_MS

ClockMode = Literal["event", "wall"]
DEAD_LETTER_KEY = "dead"
DEFAULT_BATCH_LINES = 8000
"""Lines a source hands on at most per batch. Each shard batch costs a fixed part (a load
and a transaction in Redis, a scoring call, chain-wide aggregates); 8,000 lines over 8
shards process about 1.3x faster than 2,000. A live source hands on what it has, so small
loads still travel in small batches."""


@dataclass
class RawBatch:
    """Lines read from a source, each with its position, plus the source's position after them.

    `clock_hint` lets a source move the event clock with no event (the end of a replay).
    """

    lines: list[tuple[int, bytes]]
    position: int
    clock_hint: int | None = None


@dataclass
class RunCounters:
    """Totals of a run, shared by the dataflow's steps (thread-safe)."""

    events_read: int = 0
    dead_letters: int = 0
    commands: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, events: int = 0, dead: int = 0, commands: int = 0) -> None:
        with self._lock:
            self.events_read += events
            self.dead_letters += dead
            self.commands += commands


def shard_of(customer_id: str, shards: int) -> int:
    """The shard that owns a customer: stable across runs, processes and machines."""
    return zlib.crc32(customer_id.encode()) % shards


class BatchRouter:
    """Decodes a source's raw batches and splits them by shard, carrying the source's clock.

    Event clock: the clock is the latest event time read so far, so timers fire as history
    passes them. Wall clock: the clock is the current time. An event too far ahead of the
    clock goes to the dead letters: it would otherwise fire every pending timer at once.
    The limit is a year in event time (a replay may have quiet months) and a day on the
    wall clock.
    """

    def __init__(self, shards: int, source_id: str, clock: ClockMode = "event",
                 max_clock_jump_ms: int | None = None,
                 counters: RunCounters | None = None,
                 keys: Sequence[str] | None = None) -> None:
        self.shards = shards
        self.keys = tuple(keys) if keys is not None else tuple(str(s) for s in range(shards))
        """Each shard's routing key (see engine.shard_keys)."""
        self.source_id = source_id
        self.clock_mode = clock
        if max_clock_jump_ms is None:
            max_clock_jump_ms = DAY_MS if clock == "wall" else 366 * DAY_MS
        self.max_clock_jump_ms = max_clock_jump_ms
        self.counters = counters or RunCounters()
        self.clock = 0

    def route(self, raw: RawBatch) -> list[tuple[str, ShardBatch | DeadLetter]]:
        """One (shard's routing key, ShardBatch) per shard, and one (DEAD_LETTER_KEY,
        DeadLetter) per dead letter."""
        per_shard: list[list] = [[] for _ in range(self.shards)]
        dead: list[tuple[str, ShardBatch | DeadLetter]] = []
        wall = self.clock_mode == "wall"
        now = int(time.time() * 1000) if wall else self.clock
        for position, line in raw.lines:
            try:
                event = decode_line(line, position)
            except EventError as exc:
                dead.append((DEAD_LETTER_KEY,
                             DeadLetter(exc.reason, line, position, self.source_id)))
                continue
            # before the first event, the wall clock stands in: history is in the past
            reference = now if wall else (self.clock or int(time.time() * 1000))
            if event.ts > reference + self.max_clock_jump_ms:
                days = (event.ts - reference) / DAY_MS
                dead.append((DEAD_LETTER_KEY, DeadLetter(
                    f"'ts' is {days:.1f} days ahead of the stream's clock "
                    f"(limit {self.max_clock_jump_ms / DAY_MS:.0f} days)",
                    line, position, self.source_id)))
                continue
            if not wall and event.ts > self.clock:
                self.clock = event.ts
            per_shard[shard_of(event.customer_id, self.shards)].append(event)
        if raw.clock_hint is not None and not wall:
            self.clock = max(self.clock, raw.clock_hint)
        clock = int(time.time() * 1000) if wall else self.clock
        self.counters.add(events=len(raw.lines), dead=len(dead))
        out: list[tuple[str, ShardBatch | DeadLetter]] = [
            (self.keys[shard], ShardBatch(shard, events, clock, raw.position))
            for shard, events in enumerate(per_shard)
        ]
        out.extend(dead)
        return out
