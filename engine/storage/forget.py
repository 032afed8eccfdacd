"""Erasing a customer: profile, enrollments, vouchers, timers and timeline, in one
transaction."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from engine.flow.routing import shard_of
from engine.storage.store import ShardStore, stored_shard_count


@dataclass(frozen=True)
class Erasure:
    customer_id: str
    shard: int
    had_state: bool
    had_timer: bool


def forget_customer(client: redis.Redis, prefix: str, customer_id: str,
                    shards: int | None = None) -> Erasure:
    """Delete everything the engine keeps about one customer.

    Population aggregates (venue averages, percentile histograms) keep their anonymous
    counts; journey counters are totals. Commands already handed to a sink are outside the
    engine: erase them where they are delivered.
    """
    count = stored_shard_count(client, prefix) or shards
    if count is None:
        raise ValueError(f"no engine state under prefix {prefix!r}; give the shard count")
    shard = shard_of(customer_id, count)
    store = ShardStore(client, prefix, shard)
    pipe = client.pipeline(transaction=True)
    pipe.delete(store.customer_key(customer_id), store.timeline_key(customer_id))
    pipe.zrem(store.timers_key, customer_id)
    # a running engine keeps states in memory: this tells it to drop the customer's
    pipe.rpush(store.erased_key, customer_id)
    deleted, removed, _ = pipe.execute()
    return Erasure(customer_id, shard, bool(deleted), bool(removed))
