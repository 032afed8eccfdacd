"""The shard processor: applies each shard's events and due timers to Redis state, a day at
a time, so that results depend on event time alone.

Plain Python with no dataflow-runtime import: the dataflow only hands it batches.

How a shard moves through time. Conditions read chain-wide aggregates (venue averages,
spend percentiles) as of the start of the current day (UTC): the sum of every shard's
snapshot at that boundary. A shard applies the events and timers of day D only once every
shard has passed the start of D, and it passes the end of D (writing its snapshot there)
once its watermark, the slowest clock of the sources feeding it, has reached it. Shards
therefore never run more than a day apart, and what any condition reads is fixed by the
events before that day boundary, whatever the batch sizes, shard count, process count or
source. A shard that must wait keeps its events pending; they are applied when the slower
shards catch up (the next batch, or `finish` at the end of the input).

Positions. Events are applied in event-time order, so a shard may apply a later position
before an earlier one that waits for the next day. What is committed is every position up to
the first pending one, plus the positions after it already applied; a restart re-reads from
there and skips exactly those.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from engine.core.aggregates import Aggregates, merge
from engine.core.baskets import pass_day
from engine.core.catalog import Catalog
from engine.core.commands import encode_command
from engine.core.events import Event, encode_event
from engine.core.records import BatchResult, DeadLetter, ShardBatch
from engine.core.runtime import DuplicateEvent, Effects, JourneyRuntime
from engine.core.state import CustomerState
from engine.core.timeline import event_entry, message_entry
from engine.core.timeutil import DAY_MS, iso_utc, utc_day_start
from engine.flow import identity
from engine.flow.broadcasts import BroadcastWalker
from engine.flow.telemetry import BatchFigures, Telemetry, telemetry_from_environment
from engine.run_defaults import DEFAULT_CACHE_CUSTOMERS, DEFAULT_DEDUP_WINDOW_MS, TIMELINE_KEPT
from engine.scoring.model import DEFAULT_MODEL, ScoreModel
from engine.storage.identity_store import IdentityWrites
from engine.storage.store import (
    SNAPSHOT_DAYS_KEPT,
    Boundary,
    BoundaryWatch,
    ShardStore,
    SourceProgress,
    StateStoreError,
    passed_boundaries,
    publish_snapshots,
    snapshot_as_of,
    snapshots_at,
)
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel

log = logging.getLogger(__name__)

FINISH_WAIT_S = 300.0
"""How long `finish` waits, with no progress, for shards of other processes to pass a day
it needs."""
POLL_S = 0.001
MAX_POLL_S = 0.004
"""Waiting for other processes, a worker looks again after POLL_S, doubled after each look
that found nothing to do, up to MAX_POLL_S: a busy poll would take the CPU they need.
Finishing, it looks at once when another process publishes a day boundary."""
FINISH_COMMIT_S = 1.0
DUE_READ_AHEAD_MS = 7 * DAY_MS
"""Stored timers are read a week ahead of the day applied (at most to the watermark): one
read serves a week of days until the next commit."""


@dataclass(slots=True)
class _Pending:
    at: int
    position: int
    source_id: str
    event: Event


_PENDING_ORDER = operator.attrgetter("at", "position")
"""Pending events are applied by time, then input position."""


@dataclass
class _Work:
    """What a shard has applied since its last commit: states kept decoded across the days
    of one drain, and everything the commit writes."""

    figures: BatchFigures
    dirty: set[str] = field(default_factory=set)
    """Customers whose state the commit writes."""
    effects: Effects = field(default_factory=Effects)
    applied: dict[str, list[int]] = field(default_factory=dict)
    boundaries: list[int] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    """The events applied, in order, for the customers' timelines."""
    erased: list[str] = field(default_factory=list)
    """Customers taken off the shard's erasures list: the commit deletes them again and
    trims them off the list."""
    also: list[Callable[[Any], None]] = field(default_factory=list)
    """Further writes of the commit's transaction (a broadcast's walk cursor)."""
    identity: IdentityWrites | None = None
    """Hand-offs and merges (engine.flow.identity); None: none."""

    def empty(self) -> bool:
        return not (self.dirty or self.applied or self.boundaries or self.effects.stats
                    or self.dead_letters or self.erased or self.also
                    or self.identity is not None)


@dataclass
class _Shard:
    """One shard as its owning worker keeps it between batches."""

    shard: int
    store: ShardStore
    own: Aggregates
    owner: int
    passed: int | None
    snapshots: dict[int, bytes]
    pending: list[_Pending] = field(default_factory=list)
    clocks: dict[str, int] = field(default_factory=dict)
    idle: set[str] = field(default_factory=set)
    progress: dict[str, SourceProgress] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    pending_positions: dict[str, list[int]] = field(default_factory=dict)
    """Each source's pending positions, sorted."""
    fired_until: int | None = None
    work: _Work = field(default_factory=lambda: _Work(BatchFigures(0)))
    cache: dict[str, CustomerState] = field(default_factory=dict)
    """Decoded states, least recently used first: every customer with pending events or
    uncommitted changes, and up to the processor's limit of committed ones (the shard's
    only writer is this worker, so a committed state in memory equals the stored one)."""
    due_at: dict[str, int | None] = field(default_factory=dict)
    """The next due time of each cached state."""
    due_heap: list[tuple[int, str]] = field(default_factory=list)
    """(due time, customer) of cached states, with entries made stale by a later change."""
    stored_due: list[tuple[int, str]] = field(default_factory=list)
    """(due time, customer) of timers of customers not in the cache, read from Redis and
    not fired yet, earliest first (entries of customers loaded since are skipped)."""
    stored_due_until: int | None = None
    """Every stored timer of a customer not in the cache due up to this time is in
    `stored_due`. The worker is the shard's only writer, so this stays true across
    commits: a customer it evicts joins `stored_due` when its timer falls in the range."""
    arrived: set[str] = field(default_factory=set)
    """Customers of the events taken since the last drain."""
    unpublished: list[tuple[int, bytes]] = field(default_factory=list)
    """(day, snapshot) of the boundaries passed and not yet published to other processes."""
    links: dict[str, str] = field(default_factory=dict)
    """Identifier -> survivor of the customers this shard handed off (engine.flow.identity)."""
    merges: int = 0
    """Alias events pending here: each waits for its hand-offs to be committed."""
    ready: dict[str, bytes | None] = field(default_factory=dict)
    """Transfer records read for pending alias events (None: merged before a restart)."""

    def set_due(self, customer_id: str, due: int | None) -> None:
        self.due_at[customer_id] = due
        if due is not None:
            heapq.heappush(self.due_heap, (due, customer_id))
            if len(self.due_heap) > 4 * len(self.due_at) + 64:
                self.due_heap = [(d, c) for c, d in self.due_at.items() if d is not None]
                heapq.heapify(self.due_heap)

    def due_by(self, until: int) -> list[str]:
        """Cached customers with a timer due by `until` (taken off the heap: the caller
        fires them and sets their next due time)."""
        due: dict[str, None] = {}
        heap, due_at = self.due_heap, self.due_at
        while heap and heap[0][0] <= until:
            at, cid = heapq.heappop(heap)
            if due_at.get(cid) == at:
                due[cid] = None
        return list(due)

    def watermark(self, finishing: bool) -> int | None:
        """The time up to which no event can still arrive: the slowest clock of the sources
        still reading (one that has not delivered yet holds everything back), the slowest
        of all when every source is idle, the fastest once the input has ended. None
        before any source has a clock."""
        if finishing:
            return max(self.clocks.values(), default=0) or None
        reading = [clock for source, clock in self.clocks.items() if source not in self.idle]
        if reading:
            return min(reading) or None
        return min((clock for clock in self.clocks.values() if clock > 0), default=None)


class ShardProcessor:
    """Owns the shards routed to it; one instance per process, each shard driven by the
    worker thread that received it."""

    def __init__(self, client: redis.Redis, catalog: Catalog, *, prefix: str, source_id: str,
                 shards: int, score_model: ScoreModel = DEFAULT_MODEL,
                 customer_model: CustomerModel = EMPTY_MODEL,
                 policies: Policies = NO_POLICIES, due_chunk: int = 5000,
                 dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS,
                 cache_customers: int = DEFAULT_CACHE_CUSTOMERS,
                 telemetry: Telemetry | None = None,
                 timeline_kept: int = TIMELINE_KEPT) -> None:
        self.client = client
        self.timeline_kept = timeline_kept
        """Events and messages kept per customer for the console (0: no timeline)."""
        self.cache_customers = max(0, cache_customers)
        """Committed states this process keeps decoded, over the shards it owns."""
        self.telemetry = telemetry if telemetry is not None else telemetry_from_environment()
        self.due_chunk = due_chunk
        self.prefix = prefix
        self.source_id = source_id
        self.shard_count = shards
        self.runtime = JourneyRuntime(catalog, score_model, customer_model, policies,
                                      dedup_window_ms=dedup_window_ms)
        self.broadcasts: BroadcastWalker | None = BroadcastWalker.of(catalog)
        """Walks each shard's customers at a broadcast's time; None without broadcasts."""
        self._shards: dict[int, _Shard] = {}
        self._views: dict[int, Aggregates] = {}
        self._lock = threading.Lock()
        self._polled: dict[int, float] = {}
        self._pauses: dict[int, float] = {}

    # ------------------------------------------------------------------ input
    def process(self, batch: ShardBatch) -> BatchResult:
        """Take a batch and apply whatever the shards of this worker can apply now."""
        result = BatchResult()
        self._take(batch, result)
        if self._drain(result, finishing=False):
            self._pauses[threading.get_ident()] = POLL_S
        return result

    def waiting(self) -> bool:
        """Whether this worker's shards hold work that waits for other shards (or a slower
        source): `poll` again soon."""
        return any(self._has_work(shard, finishing=False) for shard in self._mine())

    def poll_interval(self) -> float:
        """How long this worker waits before its next `poll` (see MAX_POLL_S)."""
        return self._pauses.get(threading.get_ident(), POLL_S)

    def poll(self) -> BatchResult:
        """Apply what became possible since the last batch (other processes' shards moved
        on); at most once every `poll_interval()` per worker."""
        result = BatchResult()
        me = threading.get_ident()
        now = time.monotonic()
        pause = self._pauses.get(me, POLL_S)
        if now - self._polled.get(me, 0.0) >= pause:
            self._polled[me] = now
            applied = self._drain(result, finishing=False)
            self._pauses[me] = POLL_S if applied else min(2 * pause, MAX_POLL_S)
        return result

    def finish(self) -> BatchResult:
        """The input has ended: apply everything this worker's shards still hold, waiting
        (up to FINISH_WAIT_S) for shards of other processes where a day needs them."""
        result = BatchResult()
        deadline = time.monotonic() + FINISH_WAIT_S
        committed = time.monotonic()
        pause = POLL_S
        watch: BoundaryWatch | None = None
        try:
            while True:
                # commit about once a second: other processes read published snapshots,
                # and a commit per day would cost more than the day's work
                if self._drain(result, finishing=True, commit=False):
                    deadline = time.monotonic() + FINISH_WAIT_S
                    pause = POLL_S
                else:
                    pause = min(2 * pause, MAX_POLL_S)
                waiting = [s for s in self._mine() if self._has_work(s, finishing=True)]
                if not waiting or time.monotonic() - committed > FINISH_COMMIT_S:
                    self._commit_all(result)
                    committed = time.monotonic()
                if not waiting:
                    return result
                if time.monotonic() > deadline:
                    blocked = waiting[0]
                    raise StateStoreError(
                        f"shard {blocked.shard} waited {FINISH_WAIT_S:.0f}s for every shard "
                        f"to pass {_day(blocked.passed)}; is a process of the run stopped?")
                if self._shared():
                    if watch is None:
                        watch = BoundaryWatch(self.client, self.prefix)
                    watch.wait(pause)
                else:
                    time.sleep(pause)
        finally:
            if watch is not None:
                watch.close()

    def _take(self, batch: ShardBatch, result: BatchResult) -> None:
        shard = self._shard(batch.shard, result)
        self._take_erasures(shard)
        source_id = batch.source_id or self.source_id
        progress = shard.progress.get(source_id)
        if progress is None:
            progress = shard.progress[source_id] = shard.store.progress(source_id)
        shard.received[source_id] = max(shard.received.get(source_id, -1), batch.position)
        shard.clocks[source_id] = max(shard.clocks.get(source_id, 0), batch.clock)
        if batch.idle:
            shard.idle.add(source_id)
        else:
            shard.idle.discard(source_id)
        taken = [_Pending(event.applied_at, event.position, source_id, event)
                 for event in batch.events if not progress.done(event.position)]
        result.skipped_events += len(batch.events) - len(taken)
        if batch.merges:
            shard.merges += sum(1 for item in taken if item.event.type == identity.ALIAS)
        if shard.links:
            taken = identity.drop_stale(shard, taken)
        if taken:
            # a source's events come in order: sorting merges two sorted runs (stable, so
            # an event equal in time and position to a pending one goes after it)
            shard.pending.extend(taken)
            shard.pending.sort(key=_PENDING_ORDER)
            positions = shard.pending_positions.setdefault(source_id, [])
            positions.extend(item.position for item in taken)
            positions.sort()
            shard.arrived.update(item.event.customer_id for item in taken)

    @staticmethod
    def _take_erasures(shard: _Shard) -> None:
        """Drop the customers `journeys forget` erased since the last look from memory; the
        next commit deletes them again (after any state this run wrote) and takes them off
        the list."""
        work = shard.work
        erased_before = len(work.erased)
        for cid in shard.store.erasures()[erased_before:]:
            shard.cache.pop(cid, None)
            shard.due_at.pop(cid, None)
            work.dirty.discard(cid)
            work.erased.append(cid)
        if len(work.erased) > erased_before:
            gone = set(work.erased[erased_before:])
            shard.stored_due = [(at, cid) for at, cid in shard.stored_due if cid not in gone]

    def _shard(self, number: int, result: BatchResult) -> _Shard:
        shard = self._shards.get(number)
        if shard is None:
            store = ShardStore(self.client, self.prefix, number)
            passed, snapshots = store.boundaries()
            shard = _Shard(number, store, Aggregates(store.load_aggregates()),
                           threading.get_ident(), passed, snapshots,
                           work=_Work(BatchFigures(number)),
                           links=identity.shard_links(self.client, store.tag))
            result.outbox.extend((number, line) for line in store.pending_outbox())
            with self._lock:
                self._shards[number] = shard
        return shard

    def _shared(self) -> bool:
        """Whether other processes may own shards of the run: not all of them have reached
        this one (their day boundaries are published and waited for)."""
        return len(self._shards) < self.shard_count

    def _mine(self) -> list[_Shard]:
        me = threading.get_ident()
        return [s for _, s in sorted(self._shards.items()) if s.owner == me]

    # ------------------------------------------------------------------ days
    def _drain(self, result: BatchResult, *, finishing: bool, commit: bool = True) -> bool:
        """Apply the days this worker's shards can apply, round robin, until none can;
        then (with `commit`) commit each shard's work in one transaction. Whether anything
        was applied."""
        for shard in self._mine():
            self._prefetch(shard)
        applied = False
        progressed = True
        while progressed:
            progressed = False
            remote: dict[int, int | None] = {}
            for shard in self._mine():
                while self._round(shard, result, finishing, remote):
                    progressed = applied = True
                    if len(shard.work.dirty) > self.due_chunk:
                        self._commit(shard, result)
            self._publish()
        if commit:
            self._commit_all(result)
        return applied

    def _commit_all(self, result: BatchResult) -> None:
        for shard in self._mine():
            self._commit(shard, result)

    def _prefetch(self, shard: _Shard) -> None:
        """Load the states of the customers of the events taken since the last drain, in
        one round trip."""
        cache = shard.cache
        missing: list[str] = []
        # one look-up per arrival: a set operation with `cache.keys()` walks the whole cache
        for cid in shard.arrived:
            state = cache.pop(cid, None)
            if state is None:
                missing.append(cid)
            else:
                cache[cid] = state  # most recently used last
        shard.arrived.clear()
        if missing:
            missing.sort()
            self._load(shard, missing)

    def _load(self, shard: _Shard, customer_ids: list[str]) -> None:
        for cid, raw in shard.store.load_states(customer_ids).items():
            state = shard.cache[cid] = CustomerState.from_bytes(cid, raw)
            shard.set_due(cid, state.next_due())

    def _has_work(self, shard: _Shard, *, finishing: bool) -> bool:
        watermark = shard.watermark(finishing)
        if watermark is None:
            return False
        if shard.passed is None:
            return True
        return bool(shard.pending) or watermark >= shard.passed + DAY_MS or (
            shard.fired_until is None or shard.fired_until < watermark)

    def _round(self, shard: _Shard, result: BatchResult, finishing: bool,
               remote: dict[int, int | None]) -> bool:
        """Apply what the shard can of its current day; whether anything was done."""
        watermark = shard.watermark(finishing)
        if watermark is None:
            return False
        if shard.passed is None:
            first = shard.pending[0].at if shard.pending else watermark
            self._pass(shard, utc_day_start(min(first, watermark)))
            return True
        day = shard.passed
        if not self._all_passed(day, remote):
            return False
        if self.broadcasts is not None and self.broadcasts.advance(self, shard, day):
            self._commit(shard, result)  # one slice of a broadcast's walk
            return True
        end = day + DAY_MS
        until = min(end - 1, watermark)
        closes = watermark >= end
        count = bisect.bisect_right(shard.pending, until, key=lambda p: p.at)
        if shard.merges and count:
            held = identity.first_unready(self, shard, count, result)
            if held is not None:  # an alias event waits for its hand-offs, and all after it
                count, closes = held, False
                until = min(until, shard.pending[held].at - 1)
        if not count and not closes and shard.fired_until is not None \
                and shard.fired_until >= until:
            return False
        taken, shard.pending = shard.pending[:count], shard.pending[count:]
        for item in taken:
            shard.pending_positions[item.source_id].remove(item.position)
        complete = self._apply(shard, day, until, watermark, taken, result)
        if complete:
            shard.fired_until = until
            if closes:
                self._pass(shard, end)
        else:  # a backlog of stored timers: commit this chunk, read the next
            self._commit(shard, result)
        return True

    def _pass(self, shard: _Shard, day: int) -> None:
        """Pass a day boundary: the shard's aggregates now are its snapshot there, published
        (by the end of the drain round) where shards of other processes wait for it."""
        pass_day(shard.own, day)
        blob = orjson.dumps(shard.own.own)
        shard.passed = day
        shard.snapshots[day] = blob
        shard.work.boundaries.append(day)
        if self._shared():
            shard.unpublished.append((day, blob))

    def _publish(self) -> None:
        """Publish the day snapshots this worker's shards passed, in one round trip, before
        anything waits for another process (which may be waiting for them)."""
        mine = self._mine()
        passes = [(shard.store, day, blob) for shard in mine for day, blob in shard.unpublished]
        for shard in mine:
            shard.unpublished.clear()
        if passes:
            publish_snapshots(self.client, self.prefix, passes)

    def _all_passed(self, day: int, remote: dict[int, int | None]) -> bool:
        """Whether every shard has passed `day` (others' boundaries read at most once a
        round of the drain, into `remote`)."""
        unknown = []
        for number in range(self.shard_count):
            local = self._shards.get(number)
            if local is not None and local.passed is not None:
                if local.passed < day:
                    return False
            elif number not in remote:
                unknown.append(number)
            elif not _at_least(remote[number], day):
                return False
        if unknown:
            remote.update(passed_boundaries(self.client, self.prefix, unknown))
            return all(_at_least(remote[n], day) for n in unknown)
        return True

    def _view(self, day: int) -> Aggregates:
        """The chain's aggregates as of `day`: every shard's snapshot at that boundary
        (this process's shards from memory, the others' from Redis)."""
        view = self._views.get(day)
        if view is None:
            local = {n: s.snapshots for n, s in list(self._shards.items())}
            others = [n for n in range(self.shard_count) if n not in local]
            blobs = [snapshot_as_of(snapshots, day) for snapshots in local.values()]
            if others:
                blobs.extend(snapshots_at(self.client, self.prefix, others, day).values())
            view = Aggregates({}, merge(orjson.loads(b) for b in blobs if b is not None))
            with self._lock:
                self._views[day] = view
                for old in [d for d in self._views if d < day - DAY_MS]:
                    del self._views[old]
        return view

    # ------------------------------------------------------------------ applying
    def _apply(self, shard: _Shard, day: int, until: int, watermark: int,
               pending: list[_Pending], result: BatchResult) -> bool:
        """Apply `pending` (events of `day` up to `until`), then fire the timers due by
        `until` of at most `due_chunk` customers; whether every due timer was fired."""
        work = shard.work
        view = self._view(day)
        if shard.links:
            pending = identity.drop_stale(shard, pending)
        needed = {p.event.customer_id for p in pending}
        due_ids, complete = self._due(shard, until, watermark)
        needed.update(due_ids)
        cache = shard.cache
        missing = sorted(c for c in needed if c not in cache)
        if missing:
            self._load(shard, missing)
        touched = [cache[c] for c in sorted(needed)]
        work.dirty.update(needed)
        ctx = self.runtime.context(view, shard.own)
        effects = work.effects
        timeline = work.timeline if self.timeline_kept > 0 else None
        for item in pending:
            event = item.event
            work.applied.setdefault(item.source_id, []).append(event.position)
            if event.type == identity.ALIAS or event.type == identity.HANDOFF:
                identity.apply(self, shard, item, ctx, effects, result)
                continue
            try:
                self.runtime.apply_event(cache[event.customer_id], event, ctx, effects)
                if timeline is not None:
                    timeline.append(event)
                result.applied_events += 1
                work.figures.events += 1
            except DuplicateEvent as exc:
                work.dead_letters.append(_dead(event, str(exc), item.source_id))
            except Exception as failure:  # a defect must not stop the stream: park the event
                # (its own name: compiled, `exc` is typed by the clause above)
                if shard.links and event.customer_id in shard.links:
                    work.dead_letters.append(identity.stale_letter(shard, item))
                    continue  # handed off earlier in this slice (engine.flow.identity)
                log.exception("event %s at position %d failed", event.event_id, event.position)
                work.dead_letters.append(_dead(
                    event, f"internal error: {type(failure).__name__}: {failure}",
                    item.source_id))
        for state in touched:
            if shard.links and state.customer_id in shard.links:
                continue  # handed off to another customer
            self.runtime.fire_due(state, until, ctx, effects)
            shard.set_due(state.customer_id, state.next_due())
        work.figures.timers_due += len(due_ids)
        return complete

    def _due(self, shard: _Shard, until: int, watermark: int) -> tuple[list[str], bool]:
        """Customers with a timer due by `until`: those in the shard's cache from memory,
        at most `due_chunk` others from Redis; and whether that was all of them.

        Each range of stored timers is read once (see `_Shard.stored_due_until`); what was
        read and not yet loaded waits in memory."""
        due = shard.due_by(until)
        cache = shard.cache
        if shard.stored_due_until is None or shard.stored_due_until < until:
            start = "-inf" if shard.stored_due_until is None else shard.stored_due_until + 1
            end = max(until, min(watermark, until + DUE_READ_AHEAD_MS))
            limit = self.due_chunk + len(cache)
            entries = shard.store.due(start, end, limit)
            if shard.links:  # handed off in work not committed yet
                entries = [e for e in entries if e[1] not in shard.links]
            shard.stored_due.extend(e for e in entries if e[1] not in cache)
            shard.stored_due_until = end if len(entries) < limit else entries[-1][0] - 1
        stored = shard.stored_due
        if not stored or stored[0][0] > until:
            return due, shard.stored_due_until >= until
        fresh: list[str] = []
        waiting: list[tuple[int, str]] = []
        for at, cid in stored:
            if cid in cache:
                continue  # loaded already: its time is known from memory
            if at <= until and len(fresh) < self.due_chunk:
                fresh.append(cid)
            else:
                waiting.append((at, cid))
        shard.stored_due = waiting
        complete = shard.stored_due_until >= until and len(fresh) < self.due_chunk
        return due + fresh, complete

    def _commit(self, shard: _Shard, result: BatchResult) -> None:
        """Write the shard's work since its last commit in one transaction: states, timers,
        aggregates, counters, positions, outbox and the day boundaries passed."""
        work = shard.work
        positions = self._positions(shard, work.applied)
        if work.empty() and not positions:
            return
        lines = [encode_command(command) for command in work.effects.commands]
        boundary = None
        if work.boundaries:
            assert shard.passed is not None
            oldest = shard.passed - (SNAPSHOT_DAYS_KEPT - 1) * DAY_MS
            drop = [day for day in sorted(shard.snapshots) if day < oldest]
            boundary = Boundary(shard.passed, {d: shard.snapshots[d] for d in work.boundaries
                                               if d in shard.snapshots and d not in drop},
                                drop)
            for old in drop:
                del shard.snapshots[old]
        with self.telemetry.batch(work.figures, max(shard.received.values(), default=-1)):
            shard.store.commit([shard.cache[c] for c in sorted(work.dirty)], shard.own.stored(),
                               sorted(shard.own.changed),
                               work.effects.stats, positions, lines, boundary, work.erased,
                               _timelines(work) if self.timeline_kept > 0 else None,
                               self.timeline_kept, work.also, work.identity)
            work.figures.commands = len(work.effects.commands)
            work.figures.dead_letters = len(work.dead_letters)
        shard.own.changed.clear()
        if work.identity is not None:
            identity.committed(self.client, work.identity)
        shard.progress.update(positions)
        result.commands.extend(work.effects.commands)
        result.outbox.extend((shard.shard, line) for line in lines)
        result.dead_letters.extend(work.dead_letters)
        shard.work = _Work(BatchFigures(shard.shard))
        self._evict(shard)

    def _evict(self, shard: _Shard) -> None:
        """Forget the least recently used committed states beyond the cache's limit."""
        # the budget is the process's: shared by the shards it owns (all of them with one
        # process, its share with several)
        excess = len(shard.cache) - self.cache_customers // max(len(self._shards), 1)
        if excess <= 0:
            return
        waiting = {p.event.customer_id for p in shard.pending}
        evicted = []
        for cid in shard.cache:
            if cid not in waiting:
                evicted.append(cid)
                if len(evicted) == excess:
                    break
        read_until = shard.stored_due_until
        for cid in evicted:
            del shard.cache[cid]
            due = shard.due_at.pop(cid)
            if due is not None and read_until is not None and due <= read_until:
                bisect.insort(shard.stored_due, (due, cid))

    def _positions(self, shard: _Shard, applied: dict[str, list[int]]
                   ) -> dict[str, SourceProgress]:
        """Each source's progress: up to its first pending position, plus the positions
        after that already applied."""
        out: dict[str, SourceProgress] = {}
        for source_id, received in shard.received.items():
            before = shard.progress[source_id]
            waiting = shard.pending_positions.get(source_id)
            upto = waiting[0] - 1 if waiting else received
            upto = max(upto, before.applied)
            extra = {p for p in before.extra.union(applied.get(source_id, ())) if p > upto}
            if upto != before.applied or extra != before.extra:
                out[source_id] = SourceProgress(upto, extra)
        return out


def _timelines(work: _Work) -> dict[str, list[bytes]]:
    """Each customer's new timeline entries: the events applied, then the messages."""
    out: dict[str, list[bytes]] = {}
    for event in work.timeline:
        out.setdefault(event.customer_id, []).append(event_entry(event))
    for command in work.effects.commands:
        out.setdefault(command["customer_id"], []).append(message_entry(command))
    return out


def _at_least(passed: int | None, day: int) -> bool:
    return passed is not None and passed >= day


def _dead(event: Event, reason: str, source_id: str) -> DeadLetter:
    raw = event.raw if event.raw is not None else encode_event(event)
    return DeadLetter(reason, raw, event.position, source_id, event.line)


def _day(boundary: int | None) -> str:
    return iso_utc(boundary)[:10] if boundary is not None else "its first day"
