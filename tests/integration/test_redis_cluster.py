"""The shard layout on a real three-node Redis Cluster: one shard, one slot, one transaction."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from redis_cluster import redis_cluster

from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.records import ShardBatch
from engine.core.state import CustomerState
from engine.flow.processor import ShardProcessor
from engine.flow.routing import shard_of
from engine.storage.redis_client import connect
from engine.storage.store import ShardStore, acknowledge_outbox, delete_state, read_stats
from journeys_dsl.loader import load_journey_text

pytestmark = pytest.mark.integration

T0 = 1_741_000_000_000
DAY = 86_400_000
JOURNEY = ("journey: later\nversion: 1\nentry:\n  event: visit\nsteps:\n  - id: ping\n"
           "    at: day 2\n    actions: [{send: push, template: ping}]\n")


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url  # type: ignore[misc]


def test_shards_work_on_a_cluster(cluster_url: str) -> None:
    client = connect(cluster_url)
    catalog = Catalog([load_journey_text(JOURNEY, "later.yaml")])
    shards = 4
    processors = ShardProcessor(client, catalog, prefix="c1", source_id="s", shards=shards)
    for shard in range(shards):
        events = [validate_event({"event_id": f"e{shard}-{i}", "customer_id": f"c{shard}-{i}",
                                  "type": "visit", "ts": T0 + i, "venue_id": "v",
                                  "amount": 10}, position=i) for i in range(5)]
        processors.process(ShardBatch(shard, events, T0 + 10, 4))
    commands = []
    for shard in range(shards):
        result = processors.process(ShardBatch(shard, [], T0 + 3 * DAY, 4))
        commands.extend(result.commands)
        # a shard's day can be applied when a later shard's batch arrives: acknowledge
        # each line for the shard it came from
        acknowledge_outbox(client, "c1", Counter(number for number, _ in result.outbox))
    assert len(commands) == 20
    assert read_stats(client, "c1", shards)["later@1|sent:ping:push"] == 20
    slots = {client.keyslot(ShardStore(client, "c1", s).timers_key) for s in range(shards)}
    assert len(slots) == shards  # the shards spread over the cluster's slots
    assert all(not ShardStore(client, "c1", s).pending_outbox() for s in range(shards))
    assert delete_state(client, "c1") > 0


def test_the_engine_runs_on_a_cluster(cluster_url: str, tmp_path: Path) -> None:
    from harness import Engine, at, visit

    engine = Engine(tmp_path, cluster_url, "c2", [str(tmp_path / "later.yaml")])
    (tmp_path / "later.yaml").write_text(JOURNEY)
    commands = engine.run([visit(f"g{i}", at(0)) for i in range(30)] + [visit("z", at(5))])
    assert len({c["customer_id"] for c in commands}) == 30
    assert engine.stats()["later@1|sent:ping:push"] == 30


BROADCAST = ("journey: news\nversion: 1\nentry:\n  broadcast:\n    at: \"2025-03-10 10:00\"\n"
             "steps:\n  - id: hello\n    actions: [{send: push, template: hello}]\n")


def test_a_broadcast_walks_each_shard_on_a_cluster(cluster_url: str, tmp_path: Path) -> None:
    from harness import Engine, at, visit

    engine = Engine(tmp_path, cluster_url, "c3", [str(tmp_path / "news.yaml")])
    (tmp_path / "news.yaml").write_text(BROADCAST)
    commands = engine.run([visit(f"g{i}", at(0)) for i in range(30)] + [visit("z", at(9))])
    assert len({c["customer_id"] for c in commands}) == 30
    assert {c["send_at"] for c in commands} == {"2025-03-10T10:00:00.000Z"}


def test_merges_run_on_a_cluster(cluster_url: str, tmp_path: Path) -> None:
    """The hand-off reads and deletes records of other shards' slots: single-key commands
    only, so a merge works across the cluster's nodes."""
    from harness import Engine, at, event, visit

    engine = Engine(tmp_path, cluster_url, "c4", [str(tmp_path / "later.yaml")])
    (tmp_path / "later.yaml").write_text(JOURNEY)
    pairs = [(f"a{i}", f"b{i}") for i in range(12)]
    first = [visit(a, at(0), amount=10.0) for a, _ in pairs]
    first += [visit(b, at(0), amount=5.0) for _, b in pairs]
    first += [event("alias", b, at(1), identifiers=[{"kind": "customer", "value": a}])
              for a, b in pairs]
    commands = engine.run(first + [visit(a, at(4)) for a, _ in pairs])
    assert {c["customer_id"] for c in commands} == {b for _, b in pairs}
    client = connect(cluster_url)
    for a, b in pairs:
        store = ShardStore(client, "c4", shard_of(b, 4))
        raw = store.load_states([b])[b]
        assert raw is not None
        assert CustomerState.from_bytes(b, raw).profile.visit_count == 3
        assert ShardStore(client, "c4", shard_of(a, 4)).load_states([a])[a] is None
    assert engine.stats()["identity|merged"] == len(pairs)
    assert delete_state(client, "c4") > 0
