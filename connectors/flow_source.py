"""The source seam of the dataflow: an input split into partitions, each read in batches.

A source names its partitions and the source id under which each one's applied position is
stored in every shard (committed atomically with the state, see engine.storage.store); it learns
from those where each partition resumes. A partition reads lines with their positions; the
base here does the rest every source needs the same way: the opening batch, clock ticks
while the input is quiet, the end of a replay with its `until` clock hint, the idle flag
that lets a quiet partition stop holding the shards' clock back, and the wake-ups.

A new source is two classes: an `EventSource` that lists its partitions, and a
`SourcePartition` that implements `read` (and `at_end` for a replay). docs/extending.md
walks through one.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from engine.core.records import RawBatch
from engine.run_defaults import DEFAULT_BATCH_LINES
from engine.storage.store import min_applied_position

__all__ = ["IDLE_WAKE_S", "EventSource", "Pacing", "SourcePartition"]

IDLE_WAKE_S = 0.005
"""How long a partition with nothing to read waits before asking its input again: an empty
read costs a call, a longer wait would be latency for the next event."""


@dataclass(frozen=True)
class Pacing:
    """How a source's partitions read: batch size, where they stop, how they tick."""

    batch_size: int = DEFAULT_BATCH_LINES
    """Lines a partition hands on at most per batch."""
    stop_at_end: bool = True
    """Stop at the end of the input as first seen (a replay); False: follow it (live)."""
    tick_s: float = 1.0
    """While following a quiet input: seconds between empty batches, so wall-clock timers
    fire with no traffic."""
    until_ms: int | None = None
    """At the end of a replay, move the event clock to this time so timers due by then fire."""
    idle_exit_s: float | None = None
    """While following: stop after this many seconds without a new line."""


class SourcePartition(StatefulSourcePartition[RawBatch, int], ABC):
    """One partition of a source: `read` gives its next lines, the base paces them.

    Every batch carries the partition's `source_id`. The first batch is empty, even at the
    end of the input, so every shard writes the commands its outbox kept from an earlier
    run. With nothing to read, a replay ends once `at_end` says so (emitting `until_ms` as
    a clock hint when given); a live partition emits an empty batch every `tick_s`.

    `reports_idle`: the partition's quiet and end batches say it is idle, so its clock
    does not hold back shards fed by other partitions still reading (a source with one
    partition per run may leave it off).
    """

    reports_idle = True

    def __init__(self, source_id: str, pacing: Pacing, last: int) -> None:
        """`last`: the position of the last line before the first one to read."""
        self.source_id = source_id
        self.pacing = pacing
        self._last = last
        self._opened = False
        self._done = False
        self._idle = False
        self._last_emit = self._last_data = time.monotonic()

    @abstractmethod
    def read(self, limit: int) -> RawBatch | None:
        """At most `limit` next lines with their positions (None or no lines: nothing now).

        The batch's `position` is the position of its last line."""

    def at_end(self) -> bool:
        """Whether a replay has read the end of the input as first seen (asked only when
        `read` gave nothing)."""
        return True

    def next_batch(self) -> list[RawBatch]:
        if self._done:
            raise StopIteration
        if not self._opened:
            self._opened = True
            return [self._empty()]
        batch = self.read(self.pacing.batch_size)
        now = time.monotonic()
        if batch is not None and batch.lines:
            self._idle = False
            self._last = batch.position
            self._last_emit = self._last_data = now
            batch.source_id = self.source_id
            return [batch]
        self._idle = True
        if self.pacing.stop_at_end:
            if not self.at_end():
                return []
            # the last batch says the partition is done, so its clock holds nothing back
            self._done = True
            if self.pacing.until_ms is None and not self.reports_idle:
                raise StopIteration
            return [self._empty(clock_hint=self.pacing.until_ms, idle=self.reports_idle)]
        idle_exit = self.pacing.idle_exit_s
        if idle_exit is not None and now - self._last_data > idle_exit:
            raise StopIteration
        if now - self._last_emit >= self.pacing.tick_s:
            self._last_emit = now
            return [self._empty(idle=self.reports_idle)]
        return []

    def _empty(self, clock_hint: int | None = None, idle: bool = False) -> RawBatch:
        return RawBatch([], self._last, clock_hint, idle, source_id=self.source_id)

    def next_awake(self) -> datetime | None:
        if self._idle and not self._done:
            return datetime.now(UTC) + timedelta(seconds=min(self.pacing.tick_s, IDLE_WAKE_S))
        return None

    def snapshot(self) -> int:
        """The position to read next."""
        return self._last + 1


class EventSource(FixedPartitionedSource[RawBatch, int], ABC):
    """An input of events in partitions, each stored under its own source id.

    `starts` maps each partition's name to the first position it reads; `resume` sets it
    from the positions the shards committed with their state, so a restart reads on
    exactly after what the state holds (a source may keep more there, as a file its line
    marks).
    """

    def __init__(self, pacing: Pacing, starts: Mapping[str, int] | None = None,
                 on_lag: Callable[[int, int], None] | None = None) -> None:
        self.pacing = pacing
        self.starts = dict(starts or {})
        self.on_lag = on_lag
        """Told (partition number, events behind its end) as a partition reads, where the
        input knows; the flow builder wires the engine's telemetry when none is given."""
        self.on_start: Callable[[], None] | None = None
        """Told when the dataflow first asks for the partitions: it runs on this process
        (a cluster's processes have all joined)."""

    @abstractmethod
    def source_ids(self) -> dict[str, str]:
        """Each partition's name -> the source id its positions are stored under."""

    @abstractmethod
    def start_after(self, applied: int) -> int:
        """The first position to read after `applied`, the lowest position every shard
        has applied (-1: none)."""

    @abstractmethod
    def build_partition(self, name: str, start: int) -> SourcePartition:
        """Partition `name`, reading from position `start`."""

    def resume(self, client: redis.Redis, prefix: str, shards: int) -> dict[str, int]:
        """Start each partition after what every shard applied; the starts, by partition."""
        for name, source_id in self.source_ids().items():
            applied = min_applied_position(client, prefix, shards, source_id)
            self.starts[name] = self.start_after(applied)
        return dict(self.starts)

    def list_parts(self) -> list[str]:
        if self.on_start is not None:
            self.on_start()
        return list(self.source_ids())

    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> SourcePartition:
        start = resume_state if resume_state is not None else self.starts.get(
            for_part, self.start_after(-1))
        return self.build_partition(for_part, start)
