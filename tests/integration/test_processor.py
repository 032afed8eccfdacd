"""The shard processor on its own (no dataflow runtime) against a real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.records import ShardBatch
from engine.flow.processor import ShardProcessor
from engine.storage.forget import forget_customer
from engine.storage.store import (
    BoundaryWatch,
    LayoutError,
    ShardStore,
    acknowledge_outbox,
    check_shard_count,
    passed_boundaries,
    publish_snapshots,
)
from journeys_dsl.loader import load_journey_text

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_741_000_000_000
JOURNEY = """\
journey: later
version: 1
entry:
  event: visit
steps:
  - id: ping
    at: day 2
    actions:
      - send: push
        template: ping
"""


def processor(client: redis.Redis, prefix: str, due_chunk: int = 5000,
              cache_customers: int = 1000) -> ShardProcessor:
    catalog = Catalog([load_journey_text(JOURNEY, "later.yaml")])
    return ShardProcessor(client, catalog, prefix=prefix, source_id="src", shards=1,
                          due_chunk=due_chunk, cache_customers=cache_customers)


def visits(count: int) -> list:
    return [validate_event({"event_id": f"e{i}", "customer_id": f"c{i}", "type": "visit",
                            "ts": T0 + i, "venue_id": "v", "amount": 10}, position=i)
            for i in range(count)]


def dump(client: redis.Redis, prefix: str) -> dict:
    return {key: client.dump(key) for key in sorted(client.scan_iter(match=f"*{prefix}*"))}


def test_a_position_already_applied_changes_nothing(redis_client: redis.Redis,
                                                    key_prefix: str) -> None:
    events = visits(5)
    first = processor(redis_client, key_prefix).process(ShardBatch(0, events, T0 + 10, 4))
    assert first.applied_events == 5
    before = dump(redis_client, key_prefix)
    again = processor(redis_client, key_prefix).process(ShardBatch(0, events, T0 + 10, 4))
    assert again.applied_events == 0 and again.skipped_events == 5
    assert again.commands == [] and again.dead_letters == []
    assert dump(redis_client, key_prefix) == before


def test_a_backlog_of_due_timers_fires_in_bounded_chunks(redis_client: redis.Redis,
                                                         key_prefix: str) -> None:
    engine = processor(redis_client, key_prefix, due_chunk=3)
    engine.process(ShardBatch(0, visits(10), T0 + 10, 9))
    store = ShardStore(redis_client, key_prefix, 0)
    assert redis_client.zcard(store.timers_key) == 10
    result = engine.process(ShardBatch(0, [], T0 + 3 * DAY, 9))
    assert sorted(c["customer_id"] for c in result.commands) == sorted(
        f"c{i}" for i in range(10))
    assert redis_client.zcard(store.timers_key) == 0
    assert engine.process(ShardBatch(0, [], T0 + 4 * DAY, 9)).commands == []


def test_timers_of_states_evicted_after_their_range_was_read_still_fire(
        redis_client: redis.Redis, key_prefix: str) -> None:
    # the day's events outgrow the chunk: a commit in the middle of the drain evicts
    # eight of ten states whose timers (due the next day) fall in the range already read
    engine = processor(redis_client, key_prefix, due_chunk=3, cache_customers=2)
    result = engine.process(ShardBatch(0, visits(10), T0 + 3 * DAY, 9))
    assert sorted(c["customer_id"] for c in result.commands) == sorted(
        f"c{i}" for i in range(10))
    assert len(cached(engine)) == 2
    assert engine.process(ShardBatch(0, [], T0 + 4 * DAY, 9)).commands == []


def test_the_shard_count_cannot_change_under_kept_state(redis_client: redis.Redis,
                                                        key_prefix: str) -> None:
    check_shard_count(redis_client, key_prefix, 8)
    check_shard_count(redis_client, key_prefix, 8)
    with pytest.raises(LayoutError, match="written with 8 shards, not 4"):
        check_shard_count(redis_client, key_prefix, 4)


def test_commands_stay_in_the_outbox_until_acknowledged(redis_client: redis.Redis,
                                                        key_prefix: str) -> None:
    first = processor(redis_client, key_prefix)
    first.process(ShardBatch(0, visits(3), T0 + 10, 2))
    result = first.process(ShardBatch(0, [], T0 + 3 * DAY, 2))
    assert len(result.lines) == 3 == len(result.commands)
    store = ShardStore(redis_client, key_prefix, 0)
    assert store.pending_outbox() == result.lines
    # a restart before the sink wrote them: the next process emits them again, first
    again = processor(redis_client, key_prefix).process(ShardBatch(0, [], T0 + 3 * DAY, 2))
    assert again.lines == result.lines and again.commands == []
    acknowledge_outbox(redis_client, key_prefix, {0: 2})
    assert store.pending_outbox() == result.lines[2:]


def cached(engine: ShardProcessor) -> list[str]:
    return list(engine._shards[0].cache)


def test_committed_states_stay_in_memory_up_to_the_limit(redis_client: redis.Redis,
                                                         key_prefix: str) -> None:
    engine = processor(redis_client, key_prefix, cache_customers=4)
    engine.process(ShardBatch(0, visits(6), T0 + 10, 5))
    assert cached(engine) == ["c2", "c3", "c4", "c5"]  # the least recently used went
    again = validate_event({"event_id": "x", "customer_id": "c2", "type": "visit",
                            "ts": T0 + 20, "venue_id": "v", "amount": 10}, position=6)
    engine.process(ShardBatch(0, [again], T0 + 30, 6))
    assert cached(engine) == ["c3", "c4", "c5", "c2"]
    # what memory holds is what Redis holds: a fresh processor reads the same states
    store = ShardStore(redis_client, key_prefix, 0)
    stored = store.load_states(cached(engine))
    assert {c: engine._shards[0].cache[c].to_bytes() for c in cached(engine)} == stored


def test_the_cache_budget_is_the_process_s_over_the_shards_it_owns(
        redis_client: redis.Redis, key_prefix: str) -> None:
    # two processes, one shard each: each keeps its whole budget, not half of it
    catalog = Catalog([load_journey_text(JOURNEY, "later.yaml")])
    engines = [ShardProcessor(redis_client, catalog, prefix=key_prefix, source_id="src",
                              shards=2, cache_customers=4) for _ in range(2)]

    def batch(shard: int) -> ShardBatch:
        return ShardBatch(shard, [validate_event(
            {"event_id": f"e{shard}-{i}", "customer_id": f"s{shard}c{i}", "type": "visit",
             "ts": T0 + i, "venue_id": "v", "amount": 10}, position=i) for i in range(6)],
            T0 + 10, 5)

    engines[0].process(batch(0))  # waits for shard 1 to pass the day's start
    assert engines[1].process(batch(1)).applied_events == 6
    assert engines[0].poll().applied_events == 6
    assert [len(engine._shards[shard].cache) for shard, engine in enumerate(engines)] == [4, 4]


def test_a_running_engine_honours_an_erasure(redis_client: redis.Redis,
                                             key_prefix: str) -> None:
    engine = processor(redis_client, key_prefix)
    engine.process(ShardBatch(0, visits(3), T0 + 10, 2))
    assert "c1" in cached(engine)
    erasure = forget_customer(redis_client, key_prefix, "c1", shards=1)
    assert erasure.had_state and erasure.had_timer
    # the next batch, for other customers, must not write the cached state back
    result = engine.process(ShardBatch(0, [], T0 + 3 * DAY, 2))
    assert sorted(c["customer_id"] for c in result.commands) == ["c0", "c2"]
    store = ShardStore(redis_client, key_prefix, 0)
    assert "c1" not in cached(engine)
    assert store.load_states(["c1"]) == {"c1": None}
    assert redis_client.zscore(store.timers_key, "c1") is None
    assert store.erasures() == []


def test_a_published_boundary_wakes_a_waiting_process(redis_client: redis.Redis,
                                                      key_prefix: str) -> None:
    watch = BoundaryWatch(redis_client, key_prefix)
    try:
        watch.wait(0.05)  # the subscription takes effect
        store = ShardStore(redis_client, key_prefix, 1)
        publisher = threading.Timer(0.05, publish_snapshots,
                                    (redis_client, key_prefix, [(store, T0, b"{}")]))
        began = time.monotonic()
        publisher.start()
        watch.wait(10.0)
        assert time.monotonic() - began < 5.0
        publisher.join()
        assert passed_boundaries(redis_client, key_prefix, [1]) == {1: T0}
        began = time.monotonic()
        watch.wait(0.05)  # nothing announced since: waits out its limit
        assert time.monotonic() - began >= 0.04
    finally:
        watch.close()
