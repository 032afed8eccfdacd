"""Redis layout of the engine's state, one shard at a time.

Every key of a shard shares the hash tag `{PREFIX:sN}`, so a shard's batch is written in
one MULTI/EXEC transaction and the layout works on Redis Cluster:

    {p:sN}:c:<customer_id>   customer state (orjson)
    {p:sN}:timers            sorted set: customer_id -> earliest due time (epoch ms)
    {p:sN}:agg               hash: this shard's aggregates (engine.core.aggregates), orjson values
    {p:sN}:stats             hash: "<journey>@<version>|<counter>" -> count
    {p:sN}:applied           hash: source id -> last applied input position; "<source id>+"
                             -> positions after it applied already (orjson list)
    {p:sN}:aggs              hash: "passed" -> the day boundary the shard has passed;
                             "<boundary>" -> its aggregates as of that boundary (compressed)
    {p:sN}:outbox            list: commands committed but not yet written by the sink
    {p:sN}:erased            list: customers erased by `journeys forget` that a running
                             engine must drop from its memory (and delete again)
    {p:sN}:bc                hash: broadcast journey id -> its walk over the shard's
                             customers (engine.flow.broadcasts), orjson
    {p:sN}:bc:ix:<journey>   sorted set: the shard's customer ids, for the walk under way
    {p:sN}:t:<customer_id>   list: the customer's latest events and messages (compact
                             JSON, engine.core.timeline), capped at TIMELINE_KEPT, for the console
    {p:sN}:links, :transfers, :merged   identity links and hand-offs
                             (engine.storage.identity_store)
    PREFIX:journeys          hash: "<journey>@<version>" -> the journey's source (JSON)
    PREFIX:meta              hash: "shards" -> the shard count the state was written with
    PREFIX:lines             hash: source id -> a line start read and its number
                             (engine.storage.line_marks)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import zstandard

from engine.core.state import CustomerState
from engine.errors import JourneysError
from engine.run_defaults import TIMELINE_KEPT
from engine.storage.identity_store import IdentityWrites, add_writes

ADD_COUNTS = "for i = 1, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end"
"""Adds each (field, increment) pair of ARGV to the hash KEYS[1]."""
PUSH_TIMELINES = (
    "local kept, at = tonumber(ARGV[1]), 2 "
    "for i = 1, #KEYS do local n = tonumber(ARGV[at]) "
    "redis.call('RPUSH', KEYS[i], unpack(ARGV, at + 1, at + n)) "
    "redis.call('LTRIM', KEYS[i], -kept, -1) at = at + n + 1 end")
"""Appends to each list KEYS[i] its ARGV entries (a count, then the entries) and trims it
to the last ARGV[1] entries."""


class StateStoreError(JourneysError, RuntimeError):
    """Redis refused or lost a state operation; the batch was not applied."""

    code = "state_store"


class LayoutError(StateStoreError):
    """The state in Redis was written with another number of shards."""

    code = "state_layout"


def shard_tag(prefix: str, shard: int) -> str:
    return f"{{{prefix}:s{shard}}}"


SNAPSHOT_DAYS_KEPT = 3
"""Day snapshots of a shard's aggregates kept, counted back from the last committed day: no
shard runs more than a day ahead of the slowest, so readers need two; one more covers a
reader's restart."""


@dataclass
class SourceProgress:
    """How far a shard has applied one source: every position up to `applied`, and the
    positions after it in `extra` (applied ahead of an earlier one still pending)."""

    applied: int = -1
    extra: set[int] = field(default_factory=set)

    def done(self, position: int) -> bool:
        return position <= self.applied or position in self.extra


@dataclass
class Boundary:
    """The day boundary a shard has passed, written in a commit with its aggregates as of
    each boundary passed since the last one."""

    passed: int
    snapshots: Mapping[int, bytes]
    """The shard's aggregates as of each boundary passed (JSON)."""
    drop: Sequence[int] = ()
    """Older snapshots to delete."""


def _stored_snapshot(document: bytes) -> bytes:
    """A day snapshot (JSON, as kept in memory) compressed, as stored."""
    return _SNAPSHOT_CODEC.compress(document)


def _read_snapshot(blob: bytes) -> bytes:
    """A stored day snapshot as JSON."""
    return zstandard.ZstdDecompressor().decompress(blob)


_SNAPSHOT_CODEC = zstandard.ZstdCompressor(level=1)


class ShardStore:
    """Reads and atomically writes one shard's state."""

    def __init__(self, client: redis.Redis, prefix: str, shard: int) -> None:
        self.client = client
        self.shard = shard
        self.tag = tag = shard_tag(prefix, shard)
        self._customer_prefix = f"{tag}:c:"
        self.timers_key = f"{tag}:timers"
        self.aggregates_key = f"{tag}:agg"
        self.stats_key = f"{tag}:stats"
        self.applied_key = f"{tag}:applied"
        self.outbox_key = f"{tag}:outbox"
        self.snapshots_key = f"{tag}:aggs"
        self.erased_key = f"{tag}:erased"
        self._timeline_prefix = f"{tag}:t:"

    def customer_key(self, customer_id: str) -> str:
        return self._customer_prefix + customer_id

    def timeline_key(self, customer_id: str) -> str:
        return self._timeline_prefix + customer_id

    def load_states(self, customer_ids: list[str]) -> dict[str, bytes | None]:
        """The stored states of `customer_ids` (None for a customer not seen yet)."""
        # all keys of a shard share one hash slot, so MGET serves Redis Cluster as well
        values = self.client.execute_command("MGET", *[self.customer_key(c)
                                                       for c in customer_ids])
        return dict(zip(customer_ids, values, strict=True))

    def due(self, start: int | str, until: int, limit: int) -> list[tuple[int, str]]:
        """(due time, customer) of at most `limit` stored timers due from `start` ("-inf"
        for the earliest) to `until`, earliest first."""
        members: list[tuple[bytes, float]] = self.client.zrangebyscore(  # type: ignore[assignment]
            self.timers_key, start, until, start=0, num=limit, withscores=True)
        return [(int(score), member.decode()) for member, score in members]

    def progress(self, source_id: str) -> SourceProgress:
        """How far this shard has applied `source_id`."""
        applied, extra = self.client.hmget(self.applied_key, [source_id, source_id + "+"])
        return SourceProgress(int(applied) if applied is not None else -1,
                              set(orjson.loads(extra)) if extra else set())

    def boundaries(self) -> tuple[int | None, dict[int, bytes]]:
        """The day boundary passed (None before the first) and the kept snapshots (JSON)."""
        raw: dict[bytes, bytes] = self.client.hgetall(self.snapshots_key)  # type: ignore[assignment]
        passed = raw.get(b"passed")
        return int(passed) if passed is not None else None, _snapshots_of(raw)

    def load_aggregates(self) -> dict[str, Any]:
        """The shard's aggregates (kept in memory by the shard's single owner)."""
        raw: dict[bytes, bytes] = self.client.hgetall(self.aggregates_key)  # type: ignore[assignment]
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def erasures(self) -> list[str]:
        """Customers erased since the engine last took them, oldest first."""
        return [cid.decode() for cid in self.client.lrange(self.erased_key, 0, -1)]  # type: ignore[union-attr]

    def pending_outbox(self) -> list[bytes]:
        """Commands committed but not yet acknowledged by the sink, oldest first."""
        return list(self.client.lrange(self.outbox_key, 0, -1))  # type: ignore[arg-type]

    def commit(self, states: Iterable[CustomerState], aggregates: dict[str, Any],
               changed: Iterable[str], stats: Counter[str],
               positions: Mapping[str, SourceProgress], outbox: Sequence[bytes] = (),
               boundary: Boundary | None = None, erased: Sequence[str] = (),
               timelines: Mapping[str, Sequence[bytes]] | None = None,
               timeline_kept: int = TIMELINE_KEPT,
               also: Sequence[Callable[[Any], None]] = (),
               identity: IdentityWrites | None = None) -> None:
        """Write states, timers, aggregates, counters, the positions, the commands the
        batch produced (the outbox) and a passed day boundary in one transaction; append
        each customer's new `timelines` entries to its list, keeping the last
        `timeline_kept`; delete the `erased` customers (the first entries of the erasures
        list) again; write the `identity` hand-offs and merges; `also` adds further
        writes of the shard to the transaction (each is called with the pipeline)."""
        pipe = self.client.pipeline(transaction=True)
        if erased:
            pipe.delete(*[self.customer_key(c) for c in erased],
                        *[self.timeline_key(c) for c in erased])
            pipe.zrem(self.timers_key, *erased)
            pipe.ltrim(self.erased_key, len(erased), -1)
        values: dict[str, bytes] = {}
        due_scores: dict[str, int] = {}
        no_timer: list[str] = []
        for state in states:
            values[self.customer_key(state.customer_id)] = state.to_bytes()
            due = state.next_due()
            if due is None:
                no_timer.append(state.customer_id)
            else:
                due_scores[state.customer_id] = due
        if values:
            pipe.execute_command("MSET", *[item for pair in values.items() for item in pair])
        if due_scores:
            pipe.zadd(self.timers_key, due_scores)
        if no_timer:
            pipe.zrem(self.timers_key, *no_timer)
        changed = list(changed)
        values_changed = {k: orjson.dumps(aggregates[k]) for k in changed if k in aggregates}
        if values_changed:
            pipe.hset(self.aggregates_key, mapping=values_changed)  # type: ignore[arg-type]
        dropped = sorted(k for k in changed if k not in aggregates)
        if dropped:
            pipe.hdel(self.aggregates_key, *dropped)
        increments = [item for name, count in sorted(stats.items()) if count
                      for item in (name, count)]
        if increments:  # one command for all of the batch's counters
            pipe.execute_command("EVAL", ADD_COUNTS, 1, self.stats_key, *increments)
        for source_id, progress in positions.items():
            pipe.hset(self.applied_key, source_id, progress.applied)
            if progress.extra:
                pipe.hset(self.applied_key, source_id + "+",
                          orjson.dumps(sorted(progress.extra)))
            else:
                pipe.hdel(self.applied_key, source_id + "+")
        if outbox:
            pipe.rpush(self.outbox_key, *outbox)
        if timelines:  # one command for all of the batch's customers
            keys: list[str] = []
            entries: list[bytes | int] = [timeline_kept]
            for customer_id, lines in timelines.items():
                newest = lines[-timeline_kept:]
                keys.append(self.timeline_key(customer_id))
                entries.append(len(newest))
                entries.extend(newest)
            pipe.execute_command("EVAL", PUSH_TIMELINES, len(keys), *keys, *entries)
        if identity is not None:
            add_writes(pipe, self.tag, self.customer_key, self.timers_key, identity)
        if boundary is not None:
            mapping: dict[str, bytes | int] = {"passed": boundary.passed}
            mapping.update((str(day), _stored_snapshot(document))
                           for day, document in boundary.snapshots.items())
            pipe.hset(self.snapshots_key, mapping=mapping)  # type: ignore[arg-type]
            if boundary.drop:
                pipe.hdel(self.snapshots_key, *[str(day) for day in boundary.drop])
        for write in also:
            write(pipe)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            where = ", ".join(f"{s} at {p.applied}" for s, p in positions.items()) or "-"
            raise StateStoreError(
                f"shard {self.shard}: could not commit a batch ({where}): {exc}") from exc


def passed_boundaries(client: redis.Redis, prefix: str,
                      shards: Iterable[int]) -> dict[int, int | None]:
    """The latest day boundary each of `shards` has passed or published (None: none)."""
    chosen = list(shards)
    pipe = client.pipeline(transaction=False)
    for shard in chosen:
        pipe.hmget(f"{shard_tag(prefix, shard)}:aggs", ["passed", "published"])
    out: dict[int, int | None] = {}
    for shard, values in zip(chosen, pipe.execute(), strict=True):
        known = [int(value) for value in values if value is not None]
        out[shard] = max(known) if known else None
    return out


def load_snapshots(client: redis.Redis, prefix: str,
                   shards: Iterable[int]) -> dict[int, dict[int, bytes]]:
    """Every kept day snapshot (JSON) of each of `shards`, by boundary."""
    chosen = list(shards)
    pipe = client.pipeline(transaction=False)
    for shard in chosen:
        pipe.hgetall(f"{shard_tag(prefix, shard)}:aggs")
    out: dict[int, dict[int, bytes]] = {}
    for shard, raw in zip(chosen, pipe.execute(), strict=True):
        out[shard] = _snapshots_of(raw)
    return out


def snapshots_at(client: redis.Redis, prefix: str, shards: Iterable[int],
                 day: int) -> dict[int, bytes | None]:
    """Each of `shards`' snapshot (JSON) as of `day`: the one written at `day` when there
    is one (one field read each), else the latest before it, else its first (a shard that
    started later had nothing before)."""
    chosen = list(shards)
    pipe = client.pipeline(transaction=False)
    for shard in chosen:
        pipe.hget(f"{shard_tag(prefix, shard)}:aggs", str(day))
    out: dict[int, bytes | None] = {}
    missing = []
    for shard, blob in zip(chosen, pipe.execute(), strict=True):
        if blob is None:
            missing.append(shard)
        else:
            out[shard] = _read_snapshot(blob)
    for shard, snapshots in load_snapshots(client, prefix, missing).items():
        out[shard] = snapshot_as_of(snapshots, day)
    return out


def snapshot_as_of(snapshots: Mapping[int, bytes], day: int) -> bytes | None:
    """A shard's snapshot at `day`: the latest at or before it, else its first (a shard
    starts at the day of its first event, so it had nothing before)."""
    if not snapshots:
        return None
    before = [d for d in snapshots if d <= day]
    return snapshots[max(before)] if before else snapshots[min(snapshots)]


def _snapshots_of(raw: Mapping[bytes, bytes]) -> dict[int, bytes]:
    """The day snapshots (JSON) of a shard's `aggs` hash, by boundary (its markers left
    out)."""
    return {int(key): _read_snapshot(value) for key, value in raw.items()
            if key not in (b"passed", b"published")}


def read_stats(client: redis.Redis, prefix: str, shards: int) -> Counter[str]:
    """The journey counters of all shards, summed."""
    total: Counter[str] = Counter()
    pipe = client.pipeline(transaction=False)
    for shard in range(shards):
        pipe.hgetall(f"{shard_tag(prefix, shard)}:stats")
    for reply in pipe.execute():
        for name, count in reply.items():
            total[name.decode()] += int(count)
    return total


def min_applied_position(client: redis.Redis, prefix: str, shards: int,
                         source_id: str) -> int:
    """The lowest position every shard has applied for `source_id` (-1 when none has)."""
    pipe = client.pipeline(transaction=False)
    for shard in range(shards):
        pipe.hget(f"{shard_tag(prefix, shard)}:applied", source_id)
    positions = [int(v) if v is not None else -1 for v in pipe.execute()]
    return min(positions) if positions else -1


def stored_shard_count(client: redis.Redis, prefix: str) -> int | None:
    """The shard count the state under `prefix` was written with, if any."""
    value = client.hget(f"{prefix}:meta", "shards")
    return int(value) if value is not None else None


def record_layout(client: redis.Redis, prefix: str, name: str, value: int) -> int:
    """Record a layout figure (shards, partitions) under `prefix` on first use; return the
    recorded one."""
    key = f"{prefix}:meta"
    client.hsetnx(key, name, value)
    return int(client.hget(key, name) or value)


def check_shard_count(client: redis.Redis, prefix: str, shards: int) -> None:
    """Record the shard count on first use; refuse another one later.

    A customer's shard is a function of the count, so a different count would split the
    customers' state and send messages twice.
    """
    stored = record_layout(client, prefix, "shards", shards)
    if stored != shards:
        raise LayoutError(
            f"the state under prefix {prefix!r} was written with {stored} shards, not {shards}; "
            f"run with --shards {stored}, or use a new --prefix"
        )


def delete_matching(client: redis.Redis, pattern: str, batch: int = 1000) -> int:
    """UNLINK every key matching a glob `pattern`, in batches; the number of keys removed."""
    removed = 0
    keys: list[bytes] = []

    def unlink() -> int:
        pipe = client.pipeline(transaction=False)  # one key a command: cluster-safe
        for name in keys:
            pipe.unlink(name)
        count = sum(int(n) for n in pipe.execute())
        keys.clear()
        return count

    for key in client.scan_iter(match=pattern, count=10 * batch):
        keys.append(key)
        if len(keys) >= batch:
            removed += unlink()
    if keys:
        removed += unlink()
    return removed


def delete_state(client: redis.Redis, prefix: str) -> int:
    """Delete everything the engine keeps under `prefix`: its shards' keys and PREFIX:*."""
    return delete_matching(client, f"{{{prefix}:s*") + delete_matching(client, f"{prefix}:*")


def acknowledge_outbox(client: redis.Redis, prefix: str, written: Mapping[int, int]) -> None:
    """Drop from each shard's outbox the commands the sink has durably written, oldest first.

    A sink writes each shard's commands in outbox order, so the oldest `count` are the ones
    written. A crash before this call leaves them in the outbox: they are written again
    after the restart (at least once; `command_id` lets connectors drop the repeat).
    """
    pipe = client.pipeline(transaction=False)
    for shard, count in written.items():
        if count:
            pipe.lpop(f"{shard_tag(prefix, shard)}:outbox", count)
    pipe.execute()


def publish_snapshots(client: redis.Redis, prefix: str,
                      passes: Sequence[tuple[ShardStore, int, bytes]]) -> None:
    """Make each (shard, day, snapshot as JSON) readable by other processes before the state
    that follows it is committed, in one round trip, then wake the `BoundaryWatch`es (a
    command of its own: a cluster's pipeline refuses PUBLISH). A snapshot depends on the
    events before its day alone, so a restart that derives it again writes the same bytes."""
    pipe = client.pipeline(transaction=False)
    for store, day, snapshot in passes:
        pipe.hset(store.snapshots_key, mapping={
            "published": day, str(day): _stored_snapshot(snapshot)})
    pipe.execute()
    client.publish(_boundaries_channel(prefix), b"")


class BoundaryWatch:
    """Waits for day boundaries published by other processes (`publish_snapshots`)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(_boundaries_channel(prefix))

    def wait(self, timeout: float) -> None:
        """Return once a boundary is published, or after `timeout` seconds (an announcement
        can be missed, as one published before the subscription took effect)."""
        if self._pubsub.get_message(timeout=timeout) is not None:
            while self._pubsub.get_message(timeout=0.0) is not None:
                pass  # announcements of the same wait

    def close(self) -> None:
        self._pubsub.close()


def _boundaries_channel(prefix: str) -> str:
    return f"{prefix}:boundaries"
