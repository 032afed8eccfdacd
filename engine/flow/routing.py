"""From raw input lines to per-shard batches: decoding, clocks, dead letters, sharding."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal

from engine.core.decoding import decode_line
from engine.core.events import Event, EventError
from engine.core.identity import ALIAS, HANDOFF, IdentityMap, transfer_id
from engine.core.records import DeadLetter, RawBatch, ShardBatch
from engine.core.timeutil import DAY_MS
from engine.run_defaults import DEFAULT_MAX_AMOUNT

ClockMode = Literal["event", "wall"]
DEAD_LETTER_KEY = "dead"


@dataclass
class RunCounters:
    """Totals of a run, shared by the dataflow's steps (thread-safe)."""

    events_read: int = 0
    dead_letters: int = 0
    commands: int = 0
    blank_lines: int = 0
    """Blank (or whitespace-only) input lines, skipped."""
    started: float | None = None
    """`time.perf_counter()` when the dataflow started on this process (None: not yet)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> None:
        """Mark the dataflow's start; the first call counts."""
        with self._lock:
            if self.started is None:
                self.started = time.perf_counter()

    def add(self, *, events: int = 0, dead: int = 0, commands: int = 0, blank: int = 0) -> None:
        with self._lock:
            self.events_read += events
            self.dead_letters += dead
            self.commands += commands
            self.blank_lines += blank


def shard_of(customer_id: str, shards: int) -> int:
    """The shard that owns a customer: stable across runs, processes and machines."""
    return zlib.crc32(customer_id.encode()) % shards


DEFAULT_MAX_SKEW_MS = 7 * DAY_MS
"""On the event clock, an event more than a week ahead of its source's clock is refused:
one mistyped year would otherwise fire every pending timer at once."""


LinkSource = Callable[[], list[list[Any]]]
"""[identifier, survivor, source id, position] of the links shards committed so far
(engine.flow.identity.LinkFeed.entries)."""


class BatchRouter:
    """Decodes a source's raw batches and splits them by shard, carrying the source's clock.

    Event clock: the clock is the latest event time read so far, so timers fire as history
    passes them. An event behind the clock is applied at the clock (`Event.at`), so where it
    lands depends on the order of the source alone. Wall clock: the clock is the current
    time. An event more than `max_skew_ms` ahead of the clock goes to the dead letters (it
    would move the clock past every pending timer), and so does a visit whose amount is
    above `max_amount`.

    Identity: an event whose `customer_id` is linked to another customer (an alias event,
    see engine.core.identity) is routed to that customer's shard and applied to it. The
    router learns links from the alias events it routes, at once, and from `links` (what
    shards committed, from any source partition) as it refreshes.
    """

    def __init__(self, shards: int, source_id: str, clock: ClockMode = "event",
                 max_clock_jump_ms: int | None = None,
                 counters: RunCounters | None = None,
                 keys: Sequence[str] | None = None,
                 max_amount: float = DEFAULT_MAX_AMOUNT,
                 links: LinkSource | None = None) -> None:
        self.shards = shards
        self.keys = tuple(keys) if keys is not None else tuple(str(s) for s in range(shards))
        """Each shard's routing key (see engine.storage.shard_keys)."""
        self.source_id = source_id
        self.clock_mode = clock
        if max_clock_jump_ms is None:
            max_clock_jump_ms = DAY_MS if clock == "wall" else DEFAULT_MAX_SKEW_MS
        self.max_clock_jump_ms = max_clock_jump_ms
        self.max_amount = max_amount
        self.counters = counters or RunCounters()
        self.clock = 0
        self.identities = IdentityMap()
        self._links = links
        self._links_read = 0
        self._first_position: int | None = None

    def route(self, raw: RawBatch) -> list[tuple[str, ShardBatch | DeadLetter]]:
        """One (shard's routing key, ShardBatch) per shard, and one (DEAD_LETTER_KEY,
        DeadLetter) per dead letter."""
        per_shard: list[list] = [[] for _ in range(self.shards)]
        merges: list[int] | None = None
        if self._links is not None:
            self._learn(raw)
        links = self.identities.links
        dead: list[tuple[str, ShardBatch | DeadLetter]] = []
        wall = self.clock_mode == "wall"
        now = int(time.time() * 1000) if wall else self.clock
        numbers = raw.line_numbers if raw.line_numbers is not None else repeat(None)
        for (position, line), number in zip(raw.lines, numbers, strict=False):
            try:
                event = decode_line(line, position)
            except EventError as exc:
                dead.append((DEAD_LETTER_KEY,
                             DeadLetter(exc.reason, line, position, self.source_id, number)))
                continue
            event.line = number
            # before the first event, the wall clock stands in: history is in the past
            reference = now if wall else (self.clock or int(time.time() * 1000))
            reason = self._refusal(event, reference)
            if reason is not None:
                dead.append((DEAD_LETTER_KEY, DeadLetter(reason, line, position,
                                                         self.source_id, number)))
                continue
            if not wall:
                event.at = max(event.ts, self.clock)
                self.clock = event.at
            if links:
                survivor = links.get(event.customer_id)
                if survivor is not None:
                    event.customer_id = survivor
            if event.type == ALIAS:
                shard = self._route_alias(event, per_shard)
                merges = merges or [0] * self.shards
                merges[shard] += 1
                continue
            per_shard[shard_of(event.customer_id, self.shards)].append(event)
        if raw.clock_hint is not None and not wall:
            self.clock = max(self.clock, raw.clock_hint)
        clock = int(time.time() * 1000) if wall else self.clock
        self.counters.add(events=len(raw.lines), dead=len(dead))
        out: list[tuple[str, ShardBatch | DeadLetter]] = [
            (self.keys[shard], ShardBatch(shard, events, clock, raw.position, idle=raw.idle))
            for shard, events in enumerate(per_shard)
        ]
        if merges is not None:
            for shard, count in enumerate(merges):
                batch = out[shard][1]
                assert isinstance(batch, ShardBatch)
                batch.merges = count
        out.extend(dead)
        return out

    def _route_alias(self, event: Event, per_shard: list[list]) -> int:
        """Send a hand-off to the shard of each customer the alias event links to its
        (already resolved) customer, then the event itself, naming the hand-offs it merges,
        to its customer's shard; link them here at once. The survivor's shard."""
        survivor = event.customer_id
        merge: list[list[str]] = []
        for _, value in event.data["identifiers"]:
            merged = self.identities.canonical(value)
            if not self.identities.link(merged, survivor):
                continue  # one customer already
            transfer = transfer_id(event.event_id, merged, survivor)
            handoff = Event(event.event_id, merged, HANDOFF, event.ts,
                            {"to": survivor, "transfer": transfer}, event.position,
                            event.utc_offset_s, event.raw, event.at, event.line)
            per_shard[shard_of(merged, self.shards)].append(handoff)
            merge.append([merged, transfer])
        event.data["merge"] = merge
        shard = shard_of(survivor, self.shards)
        per_shard[shard].append(event)
        return shard

    def _learn(self, raw: RawBatch) -> None:
        """Take the links shards committed since the last look: all of other sources',
        and this source's from before where this run started reading (later ones are
        learned from their alias events, when they are read again)."""
        assert self._links is not None
        if self._first_position is None:  # an empty batch's position was read before
            self._first_position = raw.lines[0][0] if raw.lines else raw.position + 1
        entries = self._links()
        if len(entries) > self._links_read:
            first = self._first_position
            for identifier, survivor, source_id, position in entries[self._links_read:]:
                if source_id != self.source_id or position < first:
                    self.identities.link(identifier, survivor)
            self._links_read = len(entries)

    def _refusal(self, event: Event, reference: int) -> str | None:
        """Why a decoded event is refused here (too far ahead, an amount out of bounds)."""
        if event.ts > reference + self.max_clock_jump_ms:
            days = (event.ts - reference) / DAY_MS
            return (f"'ts' is {days:.1f} days ahead of the stream's clock (allowed skew "
                    f"{_days(self.max_clock_jump_ms)}; --max-skew sets it)")
        if event.type == "visit" and float(event.data["amount"]) > self.max_amount:
            return (f"'amount' {event.data['amount']:g} is above the limit of "
                    f"{self.max_amount:,.0f} (--max-amount sets it)")
        return None


def _days(ms: int) -> str:
    days = ms / DAY_MS
    return f"{days:g} day" + ("" if days == 1 else "s")
