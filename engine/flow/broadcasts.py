"""Broadcasts: each shard reaches every customer it owns at a broadcast's local time.

How a shard runs one occurrence of a broadcast (local time T, e.g. 2026-12-20 10:00):

1. The walk starts at the UTC day boundary before the earliest place where it is T (UTC+14,
   so 14 hours before T read as UTC): the shard applies no event or timer of that day
   before the walk is complete, so the walk sees every customer as of the boundary,
   whatever the batch sizes, and the same events give the same result.
2. Index: the shard's customer keys are read with SCAN (bounded slices) into a sorted set
   of the shard's keyspace, with the SCAN cursor committed in the same transaction; a
   restart goes on from the cursor (a key read twice is one member).
3. Walk: the sorted set is walked in customer id order, a slice per commit. Each customer
   gets a timer (an armed entry) at T in its own zone (UTC when the profile has none);
   with a `rate`, the customers who match the audience at the walk take the shard's next
   free place from their T on (one place every 60/rate seconds, shared by every zone).
   The slice's states and the walk's cursor (the last customer armed, the places taken)
   are one transaction, so
   after a crash, even kill -9, the walk resumes after the last committed customer and
   no customer is armed twice.
4. At its time the customer's timer fires through the shard's ordinary timers: the
   audience is checked on the profile then, and a matching customer enters the journey
   (re-entry, holdout, consent, caps and quiet hours apply as for any journey).

A customer the shard first sees after the walk, before its time, is armed by the runtime
at its first event (`engine.core.broadcast_times`). An occurrence whose last local time
(UTC-12) has passed when the shard first reaches it is not sent.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from redis.cluster import RedisCluster

from engine.core.broadcast_times import LATEST_OFFSET_MS, local_to_utc, walk_day
from engine.core.catalog import Catalog
from engine.core.scope import build_scope
from engine.core.state import CustomerState
from engine.storage.store import ShardStore
from journeys_dsl.broadcasts import occurrences
from journeys_dsl.plan import BroadcastEntry, JourneyPlan

if TYPE_CHECKING:
    from engine.flow.processor import ShardProcessor, _Shard

WALK_SLICE = 1000
"""Customers armed per commit (the environment variable JOURNEYS_BROADCAST_SLICE sets
another)."""
SLICE_VARIABLE = "JOURNEYS_BROADCAST_SLICE"
SCAN_COUNT = 2000
"""Keys SCAN looks at per call while indexing."""
SCANS_PER_ROUND = 16
"""SCAN calls (each its own transaction) before the shard's round returns."""


@dataclass
class _Walk:
    """A shard's progress through one occurrence of a broadcast (stored as JSON)."""

    at: int
    """The occurrence: naive local ms."""
    phase: str = "scan"
    """"scan" (indexing the shard's customers), "walk" (arming them) or "done"."""
    scan: int = 0
    after: str = ""
    """The last customer armed."""
    taken: list[list[int]] = field(default_factory=list)
    """With a rate: the places taken, as sorted, disjoint runs [first, end) of place
    numbers (place k is at k times the rate's interval, epoch ms)."""

    def to_json(self) -> bytes:
        return orjson.dumps({"at": self.at, "phase": self.phase, "scan": self.scan,
                             "after": self.after, "taken": self.taken})

    @classmethod
    def of(cls, raw: bytes | str) -> _Walk:
        doc = orjson.loads(raw)
        return cls(int(doc["at"]), str(doc["phase"]), int(doc.get("scan", 0)),
                   str(doc.get("after", "")), [list(run) for run in doc.get("taken", [])])


class BroadcastWalker:
    """Runs the current broadcast journeys over the shards of one processor."""

    def __init__(self, plans: list[JourneyPlan], *, walk_slice: int = WALK_SLICE) -> None:
        self.plans = plans
        self.walk_slice = walk_slice
        self._occurrences = {p.journey_id: occurrences(_entry(p)) for p in plans}
        self._walks: dict[int, dict[str, _Walk | None]] = {}
        """Per shard: each broadcast's latest walk (None: none yet), read once."""
        self._quiet_until: dict[int, int] = {}
        """Per shard: no walk is due before this day."""

    @classmethod
    def of(cls, catalog: Catalog) -> BroadcastWalker | None:
        """A walker for the catalog's current broadcasts; None when there are none."""
        plans = [p for _, p in sorted(catalog.current.items())
                 if isinstance(p.entry, BroadcastEntry)]
        if not plans:
            return None
        return cls(plans, walk_slice=max(1, int(os.environ.get(SLICE_VARIABLE) or WALK_SLICE)))

    # ------------------------------------------------------------------ the hook
    def advance(self, processor: ShardProcessor, shard: _Shard, day: int) -> bool:
        """Do one slice of a walk due by `day` on the shard: whether anything was done (the
        processor then commits and comes back before applying the day)."""
        number = shard.shard
        if self._quiet_until.get(number, -1) > day:
            return False
        walks = self._walks.get(number)
        if walks is None:
            walks = self._walks[number] = _stored_walks(shard.store, self.plans)
        quiet = None
        for plan in self.plans:
            journey_id = plan.journey_id
            walk = walks[journey_id]
            if walk is not None and walk.phase != "done" and walk.at not in \
                    self._occurrences[journey_id]:
                walk = None  # a new version moved the broadcast: the old walk is void
            if walk is None or walk.phase == "done":
                occurrence = self._next(journey_id, walk, day)
                if occurrence is None:
                    continue
                if walk_day(occurrence) > day:
                    quiet = walk_day(occurrence) if quiet is None else min(quiet,
                                                                           walk_day(occurrence))
                    continue
                walk = walks[journey_id] = _Walk(occurrence)
            if walk.phase == "scan":
                if shard.work.dirty:
                    return True  # SCAN reads stored states: commit those applied first
                self._scan(shard, plan, walk)
            else:
                self._walk(processor, shard, plan, walk, day)
            return True
        self._quiet_until[number] = quiet if quiet is not None else 2**62
        return False

    def _next(self, journey_id: str, walk: _Walk | None, day: int) -> int | None:
        """The next occurrence to walk: after the last one walked, not yet over everywhere
        at the start of `day`."""
        for occurrence in self._occurrences[journey_id]:
            if walk is not None and occurrence <= walk.at:
                continue
            if occurrence + LATEST_OFFSET_MS < day:
                continue  # over everywhere before the shard got there: missed
            return occurrence
        return None

    # ------------------------------------------------------------------ the phases
    def _scan(self, shard: _Shard, plan: JourneyPlan, walk: _Walk) -> None:
        """Index a part of the shard's customers (each SCAN call its own transaction)."""
        store = shard.store
        client = store.client
        customer_prefix = store.customer_key("")
        index = _index_key(store, plan.journey_id)
        for _ in range(SCANS_PER_ROUND):
            walk.scan, keys = _scan_keys(client, walk.scan,
                                         _glob_escape(customer_prefix) + "*", customer_prefix)
            if walk.scan == 0:
                walk.phase = "walk"
            pipe = client.pipeline(transaction=True)
            ids = [_text(key)[len(customer_prefix):] for key in keys]
            if ids:
                pipe.zadd(index, dict.fromkeys(ids, 0))
            pipe.hset(_walks_key(store), plan.journey_id, walk.to_json())
            pipe.execute()
            if walk.phase != "scan":
                return

    def _walk(self, processor: ShardProcessor, shard: _Shard, plan: JourneyPlan,
              walk: _Walk, day: int) -> None:
        """Arm the next slice of customers; the commit writes them with the cursor."""
        store = shard.store
        client = store.client
        index = _index_key(store, plan.journey_id)
        start = f"({walk.after}" if walk.after else "-"
        members: list[bytes | str] = client.zrangebylex(
            index, start, "+", start=0, num=self.walk_slice)
        ids = [_text(m) for m in members]
        work = shard.work
        if not ids:
            walk.phase = "done"
            walk.taken = []
            walks_key, journey_id, record = _walks_key(store), plan.journey_id, walk.to_json()

            def finish(pipe: Any) -> None:
                pipe.hset(walks_key, journey_id, record)
                pipe.delete(index)

            work.also.append(finish)
            return
        entry = _entry(plan)
        cache = shard.cache
        missing = [c for c in ids if c not in cache]
        if missing:
            for cid, raw in store.load_states(missing).items():
                if raw:  # erased since it was indexed: nothing to arm
                    loaded = cache[cid] = CustomerState.from_bytes(cid, raw)
                    shard.set_due(cid, loaded.next_due())
        ctx = None
        if entry.rate_per_minute is not None and entry.condition is not None:
            ctx = processor.runtime.context(processor._view(day), shard.own)
        for cid in ids:
            state = cache.get(cid)
            if state is None or cid in work.erased:
                continue
            due = local_to_utc(walk.at, state.profile.timezone)
            if entry.rate_per_minute is not None:
                audience = True
                if ctx is not None and entry.condition is not None:
                    scope = build_scope(state, day, ctx, venue_id=state.profile.last_venue_id)
                    audience = entry.condition.test(scope)
                if audience:
                    interval = rate_interval_ms(entry.rate_per_minute)
                    due = take_place(walk.taken, -(-due // interval)) * interval
            state.armed[plan.journey_id] = due
            state.timer_set(due)
            shard.set_due(cid, state.next_due())
            work.dirty.add(cid)
        walk.after = ids[-1]
        walks_key, journey_id, record = _walks_key(store), plan.journey_id, walk.to_json()
        work.also.append(lambda pipe: pipe.hset(walks_key, journey_id, record))


def rate_interval_ms(per_minute: float) -> int:
    """The time between two places of a rate (200 a minute: 300 ms)."""
    return max(1, round(60_000 / per_minute))


def take_place(taken: list[list[int]], first: int) -> int:
    """The first place at or after `first` not in `taken` (sorted, disjoint runs [start,
    end) of places), which it then marks taken."""
    index = bisect.bisect_right(taken, [first, 2**62]) - 1  # the last run starting by first
    if index >= 0 and taken[index][1] >= first:  # inside that run, or just after it
        run = taken[index]
        place = run[1]  # free: touching runs are merged
        run[1] = place + 1
    else:
        place = first
        index += 1
        taken.insert(index, [place, place + 1])
    following = index + 1
    if following < len(taken) and taken[following][0] == taken[index][1]:
        taken[index][1] = taken[following][1]  # the runs touch: one run
        del taken[following]
    return place


def _entry(plan: JourneyPlan) -> BroadcastEntry:
    entry = plan.entry
    assert isinstance(entry, BroadcastEntry)
    return entry


def _walks_key(store: ShardStore) -> str:
    return store.timers_key.removesuffix(":timers") + ":bc"


def _index_key(store: ShardStore, journey_id: str) -> str:
    return f"{_walks_key(store)}:ix:{journey_id}"


def _stored_walks(store: ShardStore, plans: list[JourneyPlan]) -> dict[str, _Walk | None]:
    raw = store.client.hmget(_walks_key(store), [p.journey_id for p in plans])
    return {p.journey_id: _Walk.of(value) if value else None
            for p, value in zip(plans, raw, strict=True)}


def _scan_keys(client: Any, cursor: int, match: str, key: str) -> tuple[int, list[Any]]:
    """One SCAN call over the server that holds `key`'s slot (the shard's, on a cluster)."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)
        reply: Any = client.scan(cursor=cursor, match=match, count=SCAN_COUNT,
                                 target_nodes=node)
        cursors, keys = reply  # on a cluster: the cursor of each node scanned
        return int(cursors[node.name]), list(keys)
    found, keys = client.scan(cursor, match=match, count=SCAN_COUNT)
    return int(found), list(keys)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    """`text` with the characters special to Redis's MATCH escaped."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
