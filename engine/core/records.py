"""The records that cross the engine's seams: a source's raw batch, a shard's slice of it,
a dead letter and what applying a batch produced.

A leaf module: sources, sinks, the router and the shard processor all import these, and
they import nothing of each other's for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.core.events import Event


@dataclass
class RawBatch:
    """Lines read from a source, each with its position, plus the source's position after them.

    `clock_hint` lets a source move the event clock with no event (the end of a replay).
    `idle`: the source has nothing more to read for now (or ever), so its clock must not
    hold back the shards' watermark.
    """

    lines: list[tuple[int, bytes]]
    position: int
    clock_hint: int | None = None
    idle: bool = False
    line_numbers: list[int] | None = field(default=None, kw_only=True)
    """Each line's 1-based line number in its file, in the order of `lines`; None for a
    source without lines (a Kafka partition)."""
    source_id: str = field(default="", kw_only=True)
    """The partition of the input the positions belong to (its applied positions are
    stored under this id)."""


@dataclass
class ShardBatch:
    """A shard's slice of one input batch: its events, the clock, and the input position."""

    shard: int
    events: list[Event]
    clock: int
    position: int
    source_id: str | None = None
    """The input the positions belong to (a Kafka partition); None: the processor's own."""
    idle: bool = False
    """The source has nothing more to read for now: its clock holds nothing back."""
    merges: int = 0
    """Alias events among `events` (engine.flow.identity)."""


@dataclass
class DeadLetter:
    """An input that could not be applied, with the reason."""

    reason: str
    raw: bytes
    position: int
    source: str
    line: int | None = None
    """The input's 1-based line number in its file; None for a source without lines."""


@dataclass(frozen=True)
class LineMark:
    """A line start of an input file: the byte `offset` where line number `line` (1-based)
    begins. A source resuming at another offset counts the lines between the two."""

    offset: int
    line: int


@dataclass
class BatchResult:
    """What applying a batch produced: the commands (and their JSON lines for the sink),
    the dead letters, and how many events were applied or skipped as already applied."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[tuple[int, bytes]] = field(default_factory=list)
    """What the sink writes, as (shard, JSON line): commands left in a shard's outbox by an
    earlier run, then the commands applied now, in each shard's outbox order."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied_events: int = 0
    skipped_events: int = 0

    @property
    def lines(self) -> list[bytes]:
        return [line for _, line in self.outbox]
