"""Identity resolution through the real dataflow: events under a linked identifier reach
the survivor, two known customers merge once (profile, enrollments, vouchers), and later
commands are addressed to the survivor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from harness import Engine, at, event, visit

from engine.core.catalog import Catalog
from engine.core.records import DeadLetter, RawBatch, ShardBatch
from engine.core.state import CustomerState
from engine.flow.processor import ShardProcessor
from engine.flow.routing import BatchRouter, shard_of
from engine.storage.store import ShardStore, shard_tag

pytestmark = pytest.mark.integration

SHARDS = 4

WELCOME = """\
journey: welcome
version: 1
entry:
  event: visit
  when: "customer.visit_count == 1"
offers:
  coffee:
    description: Free coffee
    valid_for: 30d
steps:
  - id: hello
    at: day 1
    actions:
      - issue: coffee
      - send: email
        template: hello
  - id: nudge
    at: day 10
    actions:
      - send: email
        template: nudge
"""

RATED = """\
journey: rated
version: 1
entry:
  event: rating
steps:
  - id: thanks
    at: day 5
    actions:
      - send: email
        template: thanks
"""


def alias(survivor: str, when: str, *identifiers: tuple[str, str]) -> dict[str, Any]:
    return event("alias", survivor, when,
                 identifiers=[{"kind": kind, "value": value} for kind, value in identifiers])


def journeys(tmp_path: Path) -> list[str]:
    folder = tmp_path / "journeys"
    folder.mkdir(exist_ok=True)
    (folder / "welcome.yaml").write_text(WELCOME)
    (folder / "rated.yaml").write_text(RATED)
    return [str(folder)]


def state_of(client: redis.Redis, prefix: str, customer_id: str,
             shards: int = SHARDS) -> CustomerState | None:
    store = ShardStore(client, prefix, shard_of(customer_id, shards))
    raw = store.load_states([customer_id])[customer_id]
    return CustomerState.from_bytes(customer_id, raw) if raw is not None else None


def engine(tmp_path: Path, redis_url: str, prefix: str) -> Engine:
    return Engine(tmp_path, redis_url, prefix, journeys(tmp_path), shards=SHARDS,
                  addresses=False)


def profile(customer: str, when: str, **fields: Any) -> dict[str, Any]:
    return event("profile", customer, when, **fields)


def test_events_under_a_phone_number_reach_the_card_customer(
        tmp_path: Path, redis_url: str, key_prefix: str, redis_client: redis.Redis) -> None:
    run = engine(tmp_path, redis_url, key_prefix)
    commands = run.run([
        profile("card-1", at(0, 9), email="ann@example.com"),
        visit("card-1", at(0), amount=40.0),
        alias("card-1", at(3), ("phone", "+4930111"), ("email", "ann@example.org")),
        visit("+4930111", at(4), amount=20.0),
        event("rating", "ann@example.org", at(5), stars=5),
        visit("card-1", at(40), amount=10.0),
    ])
    state = state_of(redis_client, key_prefix, "card-1")
    assert state is not None
    assert state.profile.visit_count == 3
    assert state.profile.total_spend == 70.0
    assert state.profile.rating_count == 1
    # the identifiers never became customers of their own
    assert state_of(redis_client, key_prefix, "+4930111") is None
    assert state_of(redis_client, key_prefix, "ann@example.org") is None
    assert {c["customer_id"] for c in commands} == {"card-1"}
    assert sorted(c["journey"] for c in commands) == ["rated", "welcome", "welcome"]
    assert run.dead_letters() == []
    assert run.stats()["identity|handed_off"] == 2
    assert run.stats()["identity|linked"] == 2
    assert run.stats()["identity|merged"] == 0  # nothing kept under them: nothing to merge


def test_two_known_customers_merge_once_with_enrollments_and_vouchers(
        tmp_path: Path, redis_url: str, key_prefix: str, redis_client: redis.Redis) -> None:
    run = engine(tmp_path, redis_url, key_prefix)
    first = run.run([
        profile("anna", at(0, 9), email="anna@example.com"),
        visit("anna", at(0), amount=30.0),       # anna enters welcome
        profile("a-phone", at(1, 9), phone="+4930999", email="other@example.com",
                name="Anna"),
        visit("a-phone", at(1), amount=50.0),    # a-phone enters welcome too
        event("rating", "a-phone", at(1, 14), stars=4),  # and rated
        visit("a-phone", at(2), amount=25.0),
    ], until=at(3))
    assert {c["customer_id"] for c in first} == {"anna", "a-phone"}
    before_anna = state_of(redis_client, key_prefix, "anna")
    before_phone = state_of(redis_client, key_prefix, "a-phone")
    assert before_anna is not None and before_phone is not None
    phone_vouchers = set(before_phone.vouchers)
    assert phone_vouchers and set(before_anna.vouchers)

    link = alias("anna", at(4), ("customer", "a-phone"))
    second = run.run([
        link,
        alias("anna", at(4, 13), ("customer", "a-phone")),  # again: nothing more happens
        link,  # the same event twice: refused as the other types are
        visit("a-phone", at(5), amount=5.0),
        event("rating", "a-phone", at(6), stars=5),
    ], until=at(30))
    merged = state_of(redis_client, key_prefix, "anna")
    assert merged is not None
    assert state_of(redis_client, key_prefix, "a-phone") is None
    p = merged.profile
    assert p.visit_count == 4 and p.total_spend == 110.0
    assert p.first_visit_at == before_anna.profile.first_visit_at
    assert p.email == "anna@example.com"  # the survivor's contact wins
    assert p.phone == "+4930999" and p.name == "Anna"  # filled from the merged customer
    assert p.rating_count == 2
    # enrollments: anna's welcome wins, a-phone's rated moves over (and re-enters nothing
    # while active); vouchers of both are kept
    assert set(merged.enrollments) == {"welcome", "rated"}
    assert merged.enrollments["welcome"].entered_at == before_anna.enrollments[
        "welcome"].entered_at
    assert phone_vouchers <= set(merged.vouchers)
    assert set(before_anna.vouchers) <= set(merged.vouchers)
    # later commands go to the survivor only, the moved enrollment's included; a-phone's
    # dropped welcome sends no nudge
    assert {c["customer_id"] for c in second} == {"anna"}
    assert sorted((c["journey"], c["step"]) for c in second) == [
        ("rated", "thanks"), ("welcome", "nudge")]
    stats = run.stats()
    assert stats["identity|merged"] == 1
    assert stats["identity|enrollments_dropped"] == 1
    dead = run.dead_letters()
    assert len(dead) == 1 and "already applied" in dead[0]["reason"]
    # the transfer record is gone; the marker stays with the survivor's shard
    tag = shard_tag(key_prefix, shard_of("a-phone", SHARDS))
    assert redis_client.hlen(f"{tag}:transfers") == 0
    anna_tag = shard_tag(key_prefix, shard_of("anna", SHARDS))
    assert redis_client.hlen(f"{anna_tag}:merged") == 1


def test_links_learned_by_an_earlier_run_route_a_later_one(
        tmp_path: Path, redis_url: str, key_prefix: str, redis_client: redis.Redis) -> None:
    run = engine(tmp_path, redis_url, key_prefix)
    run.run([visit("bob", at(0)), alias("bob", at(1), ("card", "CARD-7"))], until=at(2))
    # another file (another source): its router reads the link from Redis
    run.run([visit("CARD-7", at(3), amount=12.0), alias("CARD-7", at(4), ("card", "X"))],
            until=at(5))
    state = state_of(redis_client, key_prefix, "bob")
    assert state is not None and state.profile.visit_count == 2
    assert state_of(redis_client, key_prefix, "CARD-7") is None
    assert state_of(redis_client, key_prefix, "X") is None  # linked to bob through CARD-7
    assert run.dead_letters() == []


def test_bad_alias_events_are_dead_letters_with_reasons(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    run = engine(tmp_path, redis_url, key_prefix)
    run.run([
        event("alias", "c1", at(0), identifiers=[]),
        event("alias", "c1", at(0), identifiers=[{"kind": "fax", "value": "1"}]),
        event("alias", "c1", at(0), identifiers=[{"kind": "card", "value": 7}]),
        event("alias", "c1", at(0)),
        visit("c1", at(1)),
    ])
    reasons = [d["reason"] for d in run.dead_letters()]
    assert reasons == [
        "'identifiers' must be a list of 1 to 16 objects such as "
        "{\"kind\": \"phone\", \"value\": \"+4930123456\"}",
        "'identifiers[0].kind' must be one of customer, card, phone, email, booking, "
        "got 'fax'",
        "'identifiers[0].value' must be a non-empty string (quote numbers)",
        "'identifiers' must be a list of 1 to 16 objects such as "
        "{\"kind\": \"phone\", \"value\": \"+4930123456\"}",
    ]


T0 = 1_741_000_000_000
HOUR = 3_600_000
TWO = 2
"""Shards of the two-partition tests, in which ANNA and BEA live on different shards."""
ANNA, BEA = "anna", "bea"


class _Feed:
    """Routes events as a source partition's router does and hands the shard batches to one
    processor; called with (router, first position, *events), it gives their dead
    letters."""

    def __init__(self, processor: ShardProcessor) -> None:
        self.processor = processor

    def __call__(self, router: BatchRouter, position: int,
                 *items: dict[str, Any]) -> list[DeadLetter]:
        lines = [(position + n, orjson.dumps(item)) for n, item in enumerate(items)]
        dead: list[DeadLetter] = []
        for _, batch in router.route(RawBatch(lines, position + len(items) - 1,
                                              source_id=router.source_id)):
            if isinstance(batch, ShardBatch):
                batch.source_id = router.source_id
                dead.extend(self.processor.process(batch).dead_letters)
        return dead


def _two_partitions(client: redis.Redis, prefix: str
                    ) -> tuple[BatchRouter, BatchRouter, _Feed]:
    """The routers of two source partitions and a processor of all TWO shards."""
    assert shard_of(ANNA, TWO) != shard_of(BEA, TWO)
    processor = ShardProcessor(client, Catalog([]), prefix=prefix, source_id="p1",
                               shards=TWO)
    return BatchRouter(TWO, "p1"), BatchRouter(TWO, "p2"), _Feed(processor)


def _seen_visit(event_id: str, customer: str, ts: int) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "ts": ts, "type": "visit",
            "venue_id": "v", "amount": 10}


@pytest.mark.parametrize("late_hours", [1, 2])
def test_an_event_of_another_partition_after_the_hand_off_is_a_dead_letter(
        redis_client: redis.Redis, key_prefix: str, late_hours: int) -> None:
    """Two source partitions: the second one's router has not learned the link when it
    routes an event of the merged customer; the old shard refuses it rather than apply it
    to an empty customer (which would split the guest again), whether it comes after the
    hand-off or with it (at the same time)."""
    first, second, feed = _two_partitions(redis_client, key_prefix)
    a, b = ANNA, BEA
    linked = {"event_id": "al", "customer_id": b, "ts": T0 + HOUR, "type": "alias",
              "identifiers": [{"kind": "customer", "value": a}]}
    feed(second, 0, _seen_visit("p2-0", "someone", T0))
    feed(first, 0, _seen_visit("v1", a, T0), _seen_visit("v2", b, T0), linked)
    late = feed(second, 10, _seen_visit("v3", a, T0 + late_hours * HOUR))
    finished = feed.processor.finish()
    dead = late + finished.dead_letters
    assert [d.reason for d in dead] == [
        "customer_id 'anna' was merged into 'bea' before this event arrived (from another "
        "source partition than the alias event); send it again for 'bea'"]
    assert state_of(redis_client, key_prefix, a, TWO) is None
    merged = state_of(redis_client, key_prefix, b, TWO)
    assert merged is not None and merged.profile.visit_count == 2


def test_an_alias_event_repeated_through_another_partition_merges_once(
        redis_client: redis.Redis, key_prefix: str) -> None:
    """The same alias event read from two source partitions: the second one's router does
    not know the link, and sends the same hand-off (the same transfer id) again. The merged
    customer's state moves once, and is neither lost nor counted twice."""
    first, second, feed = _two_partitions(redis_client, key_prefix)
    a, b = ANNA, BEA
    linked = {"event_id": "al", "customer_id": b, "ts": T0 + HOUR, "type": "alias",
              "identifiers": [{"kind": "customer", "value": a}]}
    feed(second, 0, _seen_visit("p2-0", "someone", T0))
    dead = feed(first, 0, _seen_visit("v1", a, T0), _seen_visit("v2", b, T0), linked)
    dead += feed(second, 10, linked)
    dead += feed.processor.finish().dead_letters
    # the repeat is refused at both shards it reached, as any repeated event
    assert sorted((d.source, d.reason) for d in dead) == [
        ("p2", "'anna' was handed off to 'bea' already; this hand-off (alias event 'al') "
               "repeats it and changes nothing"),
        ("p2", "event_id 'al' was already applied")]
    assert state_of(redis_client, key_prefix, a, TWO) is None
    merged = state_of(redis_client, key_prefix, b, TWO)
    assert merged is not None and merged.profile.visit_count == 2
    assert merged.profile.total_spend == 20.0

