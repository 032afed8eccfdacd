"""The shard processor: applies one shard's batch of events and due timers to Redis state.

Plain Python with no dataflow-runtime import: the dataflow only feeds it batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from engine.aggregates import Aggregates, merge
from engine.catalog import Catalog
from engine.commands import encode_command
from engine.events import Event, encode_event
from engine.runtime import DuplicateEvent, Effects, JourneyRuntime
from engine.scoring import DEFAULT_MODEL, ScoreModel
from engine.scoring_batch import score_states
from engine.state import CustomerState
from engine.store import ShardStore
from engine.telemetry import BatchFigures, Telemetry, telemetry_from_environment
from engine.timeutil import HOUR_MS
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel

log = logging.getLogger(__name__)


@dataclass
class ShardBatch:
    """A shard's slice of one input batch: its events, the clock, and the input position."""

    shard: int
    events: list[Event]
    clock: int
    position: int
    source_id: str | None = None
    """The input the positions belong to (a Kafka partition); None: the processor's own."""


@dataclass
class DeadLetter:
    """An input that could not be applied, with the reason."""

    reason: str
    raw: bytes
    position: int
    source: str


@dataclass
class BatchResult:
    commands: list[dict[str, Any]] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    """What the sink writes: commands left in the outbox by an earlier run, then this
    batch's commands, as JSON lines."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied_events: int = 0
    skipped_events: int = 0


class ShardProcessor:
    """Owns the shards routed to it; one instance per worker."""

    def __init__(self, client: redis.Redis, catalog: Catalog, *, prefix: str, source_id: str,
                 shards: int, score_model: ScoreModel = DEFAULT_MODEL,
                 customer_model: CustomerModel = EMPTY_MODEL,
                 policies: Policies = NO_POLICIES, due_chunk: int = 5000,
                 telemetry: Telemetry | None = None) -> None:
        self.client = client
        self.telemetry = telemetry if telemetry is not None else telemetry_from_environment()
        self.due_chunk = due_chunk
        self.prefix = prefix
        self.source_id = source_id
        self.shard_count = shards
        self.runtime = JourneyRuntime(catalog, score_model, customer_model, policies)
        self._stores: dict[int, ShardStore] = {}
        self._aggregates: dict[int, Aggregates] = {}
        self._aggregates_hour: dict[int, int] = {}
        self._recovered: dict[int, list[bytes]] = {}

    def _store(self, shard: int) -> ShardStore:
        store = self._stores.get(shard)
        if store is None:
            store = self._stores[shard] = ShardStore(self.client, self.prefix, shard)
            self._aggregates[shard] = Aggregates(store.load_aggregates())
            self._recovered[shard] = store.pending_outbox()
        return store

    def _shard_aggregates(self, shard: int, clock: int) -> Aggregates:
        """The shard's aggregates, with the other shards' refreshed once an hour of clock."""
        aggregates = self._aggregates[shard]
        hour = clock // HOUR_MS
        if self._aggregates_hour.get(shard) != hour:
            others = [ShardStore(self.client, self.prefix, other).load_aggregates()
                      for other in range(self.shard_count) if other != shard]
            aggregates.others = merge(others)
            self._aggregates_hour[shard] = hour
        return aggregates

    def process(self, batch: ShardBatch) -> BatchResult:
        """Apply a batch: events at positions already applied are skipped, due timers fire,
        and state, timers, counters and the position are written in one transaction.

        Due customers are loaded `due_chunk` at a time, so a backlog of timers (after
        downtime) fires in bounded steps, each committed on its own.
        """
        store = self._store(batch.shard)
        aggregates = self._shard_aggregates(batch.shard, batch.clock)
        result = BatchResult()
        result.lines.extend(self._recovered.pop(batch.shard, ()))
        figures = BatchFigures(batch.shard)
        with self.telemetry.batch(figures, batch.position):
            events = batch.events
            while True:
                due = self._apply(store, aggregates, batch, events, result)
                figures.timers_due += due
                if due < self.due_chunk:
                    break
                events = []
            figures.events = result.applied_events
            figures.commands = len(result.commands)
            figures.dead_letters = len(result.dead_letters)
        return result

    def _apply(self, store: ShardStore, aggregates: Aggregates, batch: ShardBatch,
               events: list[Event], result: BatchResult) -> int:
        """One transaction: the events, then every loaded customer's due timers."""
        source_id = batch.source_id or self.source_id
        customer_ids = sorted({event.customer_id for event in events})
        loaded = store.load(source_id, customer_ids, batch.clock, self.due_chunk)
        states = {cid: CustomerState.from_bytes(cid, raw)
                  for cid, raw in loaded.raw_states.items()}
        snapshot = aggregates.snapshot_own()
        score_states(list(states.values()), batch.clock, self.runtime.score_model)
        ctx = self.runtime.context(aggregates)
        effects = Effects()
        for event in sorted(events, key=_event_order):
            if event.position <= loaded.applied:
                result.skipped_events += 1
                continue
            try:
                self.runtime.apply_event(states[event.customer_id], event, ctx, effects)
                result.applied_events += 1
            except DuplicateEvent as exc:
                result.dead_letters.append(self._dead(event, str(exc), source_id))
            except Exception as exc:  # a defect must not stop the stream: park the event
                log.exception("event %s at position %d failed", event.event_id, event.position)
                result.dead_letters.append(self._dead(
                    event, f"internal error: {type(exc).__name__}: {exc}", source_id))
        for customer_id in sorted(states):
            self.runtime.fire_due(states[customer_id], batch.clock, ctx, effects)
        position = max(loaded.applied, batch.position)
        if (position == loaded.applied and not loaded.due and not effects.stats
                and not effects.commands and not aggregates.changed):
            return 0
        lines = [encode_command(command) for command in effects.commands]
        try:
            store.commit(states.values(), aggregates.own, sorted(aggregates.changed),
                         effects.stats, source_id, position, lines)
        except Exception:
            aggregates.restore_own(snapshot)
            raise
        aggregates.changed.clear()
        result.commands.extend(effects.commands)
        result.lines.extend(lines)
        return loaded.due

    @staticmethod
    def _dead(event: Event, reason: str, source_id: str) -> DeadLetter:
        raw = event.raw if event.raw is not None else encode_event(event)
        return DeadLetter(reason, raw, event.position, source_id)

    @property
    def shards(self) -> Sequence[int]:
        return sorted(self._stores)


def _event_order(event: Event) -> tuple[int, int]:
    return (event.ts, event.position)
