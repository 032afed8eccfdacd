"""Redis layout of the engine's state, one shard at a time.

Every key of a shard shares the hash tag `{PREFIX:sN}`, so a shard's batch is written in
one MULTI/EXEC transaction and the layout works on Redis Cluster:

    {p:sN}:c:<customer_id>   customer state (orjson)
    {p:sN}:timers            sorted set: customer_id -> earliest due time (epoch ms)
    {p:sN}:agg               hash: this shard's aggregates (engine.aggregates), orjson values
    {p:sN}:stats             hash: "<journey>@<version>|<counter>" -> count
    {p:sN}:applied           hash: source id -> last applied input position
    {p:sN}:outbox            list: commands committed but not yet written by the sink
    PREFIX:journeys          hash: "<journey>@<version>" -> the journey's source (JSON)
    PREFIX:meta              hash: "shards" -> the shard count the state was written with
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from engine.state import CustomerState

ADD_COUNTS = "for i = 1, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end"
"""Adds each (field, increment) pair of ARGV to the hash KEYS[1]."""


class StateStoreError(RuntimeError):
    """Redis refused or lost a state operation; the batch was not applied."""


class LayoutError(StateStoreError):
    """The state in Redis was written with another number of shards."""


def shard_tag(prefix: str, shard: int) -> str:
    return f"{{{prefix}:s{shard}}}"


@dataclass
class LoadedBatch:
    """What a batch needs from Redis, read in one round trip (plus one for due customers)."""

    applied: int
    raw_states: dict[str, bytes | None]
    due: int


class ShardStore:
    """Reads and atomically writes one shard's state."""

    def __init__(self, client: redis.Redis, prefix: str, shard: int) -> None:
        self.client = client
        self.shard = shard
        tag = shard_tag(prefix, shard)
        self._customer_prefix = f"{tag}:c:"
        self.timers_key = f"{tag}:timers"
        self.aggregates_key = f"{tag}:agg"
        self.stats_key = f"{tag}:stats"
        self.applied_key = f"{tag}:applied"
        self.outbox_key = f"{tag}:outbox"

    def customer_key(self, customer_id: str) -> str:
        return self._customer_prefix + customer_id

    def load(self, source_id: str, customer_ids: list[str], clock: int,
             due_limit: int) -> LoadedBatch:
        """The applied position, the states of `customer_ids`, and of at most `due_limit`
        customers whose timers are due by `clock`, earliest first."""
        # all keys of a shard share one hash slot, so MGET serves Redis Cluster as well
        # (sent as a raw command: the cluster client's pipeline refuses its mget method)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.applied_key, source_id)
        pipe.zrangebyscore(self.timers_key, "-inf", clock, start=0, num=due_limit)
        if customer_ids:
            pipe.execute_command("MGET", *[self.customer_key(c) for c in customer_ids])
        replies = pipe.execute()
        applied = int(replies[0]) if replies[0] is not None else -1
        raw_states: dict[str, bytes | None] = dict(
            zip(customer_ids, replies[2] if customer_ids else [], strict=True))
        due = [bytes(member).decode() for member in replies[1]]
        missing = [c for c in due if c not in raw_states]
        if missing:
            values = self.client.execute_command("MGET", *[self.customer_key(c)
                                                           for c in missing])
            raw_states.update(zip(missing, values, strict=True))
        return LoadedBatch(applied, raw_states, len(due))

    def load_aggregates(self) -> dict[str, Any]:
        """The shard's aggregates (kept in memory by the shard's single owner)."""
        raw: dict[bytes, bytes] = self.client.hgetall(self.aggregates_key)  # type: ignore[assignment]
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def pending_outbox(self) -> list[bytes]:
        """Commands committed but not yet acknowledged by the sink, oldest first."""
        return list(self.client.lrange(self.outbox_key, 0, -1))  # type: ignore[arg-type]

    def commit(self, states: Iterable[CustomerState], aggregates: dict[str, Any],
               changed: Iterable[str], stats: Counter[str], source_id: str,
               position: int, outbox: Sequence[bytes] = ()) -> None:
        """Write states, timers, aggregates, counters, the position and the commands the
        batch produced (the outbox) in one transaction."""
        pipe = self.client.pipeline(transaction=True)
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
        values_changed = {k: orjson.dumps(aggregates[k]) for k in changed if k in aggregates}
        if values_changed:
            pipe.hset(self.aggregates_key, mapping=values_changed)  # type: ignore[arg-type]
        increments = [item for name, count in sorted(stats.items()) if count
                      for item in (name, count)]
        if increments:  # one command for all of the batch's counters
            pipe.execute_command("EVAL", ADD_COUNTS, 1, self.stats_key, *increments)
        pipe.hset(self.applied_key, source_id, position)
        if outbox:
            pipe.rpush(self.outbox_key, *outbox)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise StateStoreError(
                f"shard {self.shard}: could not commit a batch at position {position}: {exc}"
            ) from exc


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
