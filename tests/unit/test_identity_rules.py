"""Identity resolution without Redis: decoding alias events, the identity map, the router's
resolution before sharding, transfer records and the merge rule."""

from __future__ import annotations

import orjson
import pytest

from engine.core.decoding import decode_line
from engine.core.events import EventError
from engine.core.identity import ALIAS, HANDOFF, IdentityMap, transfer_id
from engine.core.merge import (
    decode_transfer,
    encode_transfer,
    histogram_values,
    merge_profiles,
    merge_states,
)
from engine.core.profile import TOP_COUNTS_KEPT, Profile
from engine.core.records import RawBatch, ShardBatch
from engine.core.runtime import POINTS_EXPIRY
from engine.core.state import CustomerState, Enrollment, Voucher
from engine.flow.identity import refusal_reason
from engine.flow.routing import BatchRouter, shard_of

TS = 1_741_000_000_000
DAY = 86_400_000


def line(**fields: object) -> bytes:
    base: dict[str, object] = {"event_id": "e1", "customer_id": "B", "ts": TS}
    return orjson.dumps({**base, **fields})


def alias_line(event_id: str, survivor: str, *values: str, ts: int = TS) -> bytes:
    return line(event_id=event_id, customer_id=survivor, type="alias", ts=ts,
                identifiers=[{"kind": "customer", "value": v} for v in values])


def visit_line(event_id: str, customer: str, ts: int = TS) -> bytes:
    return line(event_id=event_id, customer_id=customer, type="visit", ts=ts, amount=10,
                venue_id="v1")


# ---------------------------------------------------------------------- decoding
def test_an_alias_event_decodes_to_kind_value_pairs() -> None:
    event = decode_line(line(type="alias", identifiers=[
        {"kind": "card", "value": "C-1"}, {"kind": "phone", "value": "+4930"}]))
    assert event.type == ALIAS and event.customer_id == "B"
    assert event.data == {"identifiers": [["card", "C-1"], ["phone", "+4930"]]}


@pytest.mark.parametrize(("identifiers", "reason"), [
    (None, "'identifiers' must be a list of 1 to 16 objects"),
    ([], "'identifiers' must be a list of 1 to 16 objects"),
    ([{"kind": "card", "value": str(n)} for n in range(17)],
     "'identifiers' must be a list of 1 to 16 objects"),
    (["C-1"], "'identifiers[0]' must be an object with 'kind' and 'value'"),
    ([{"kind": "fax", "value": "1"}], "'identifiers[0].kind' must be one of customer, "
                                      "card, phone, email, booking, got 'fax'"),
    ([{"kind": "card", "value": 7}], "'identifiers[0].value' must be a non-empty string"),
    ([{"kind": "card", "value": ""}], "'identifiers[0].value' must be a non-empty string"),
    ([{"kind": "card", "value": "x" * 201}],
     "'identifiers[0].value' is longer than 200 characters"),
])
def test_a_bad_alias_event_is_refused_with_its_reason(identifiers: object,
                                                      reason: str) -> None:
    fields: dict[str, object] = {"type": "alias"}
    if identifiers is not None:
        fields["identifiers"] = identifiers
    with pytest.raises(EventError) as caught:
        decode_line(line(**fields))
    assert caught.value.reason.startswith(reason)


def test_the_other_types_still_name_their_reasons() -> None:
    with pytest.raises(EventError, match="unknown event type 'aliases'"):
        decode_line(line(type="aliases"))


# ---------------------------------------------------------------------- the map
def test_the_map_stays_flat_through_chains_of_links() -> None:
    ids = IdentityMap()
    assert ids.link("A", "B")
    assert ids.link("phone", "A")  # linked to A, which is B
    assert ids.link("B", "C")  # B and everything linked to it now resolve to C
    assert ids.links == {"A": "C", "phone": "C", "B": "C"}
    assert not ids.link("A", "D")  # linked already
    assert not ids.link("C", "A")  # one customer already
    assert ids.canonical("unknown") == "unknown"


# ---------------------------------------------------------------------- routing
def route(router: BatchRouter, *lines: bytes) -> dict[int, ShardBatch]:
    raw = RawBatch([(n * 100, item) for n, item in enumerate(lines)], len(lines) * 100,
                   source_id="s")
    return {item.shard: item for _, item in router.route(raw) if isinstance(item, ShardBatch)}


def events(batches: dict[int, ShardBatch]) -> list[tuple[str, str, str]]:
    return sorted((e.type, e.customer_id, e.event_id) for b in batches.values()
                  for e in b.events)


def test_no_alias_means_no_change_to_routing() -> None:
    router = BatchRouter(8, "s")
    batches = route(router, visit_line("v1", "A"), visit_line("v2", "B"))
    assert router.identities.links == {}
    assert batches[shard_of("A", 8)].events[0].customer_id == "A"
    assert all(b.merges == 0 for b in batches.values())


def test_an_alias_sends_hand_offs_then_routes_later_events_to_the_survivor() -> None:
    router = BatchRouter(8, "s")
    batches = route(router, visit_line("v1", "A"), alias_line("a1", "B", "A", "B"),
                    visit_line("v2", "A"))
    handoffs = [e for b in batches.values() for e in b.events if e.type == HANDOFF]
    assert [(h.customer_id, h.data) for h in handoffs] == [
        ("A", {"to": "B", "transfer": transfer_id("a1", "A", "B")})]
    assert handoffs[0] in batches[shard_of("A", 8)].events
    survivor = batches[shard_of("B", 8)]
    alias = next(e for e in survivor.events if e.type == ALIAS)
    assert alias.data["merge"] == [["A", transfer_id("a1", "A", "B")]]
    assert survivor.merges == 1
    # the visit after the alias goes to B's shard as B's; the one before stays A's
    assert [(e.event_id, e.customer_id) for e in survivor.events if e.type == "visit"
            ] == [("v2", "B")]
    assert [e.event_id for e in batches[shard_of("A", 8)].events if e.type == "visit"
            ] == ["v1"]
    # in the survivor's shard, the alias comes after the hand-offs of its line
    if shard_of("A", 8) == shard_of("B", 8):
        kinds = [e.type for e in survivor.events]
        assert kinds.index(HANDOFF) < kinds.index(ALIAS)


def test_an_alias_for_a_linked_customer_goes_to_its_survivor() -> None:
    router = BatchRouter(8, "s")
    route(router, alias_line("a1", "B", "A"))
    batches = route(router, alias_line("a2", "A", "X"), alias_line("a3", "B", "A"))
    handoffs = [e for b in batches.values() for e in b.events if e.type == HANDOFF]
    assert [(h.customer_id, h.data["to"]) for h in handoffs] == [("X", "B")]
    assert router.identities.links == {"A": "B", "X": "B"}


def test_one_alias_event_resolved_to_two_survivors_names_two_transfers() -> None:
    """The same alias event read from two partitions whose routers resolve its customer
    differently (one knows B -> Z, the other not yet): the identifier's shard hands it off
    once and refuses the other hand-off, whose record must not be the one the first
    survivor's shard merges (nor be looked for by both)."""
    knows, late = BatchRouter(8, "p1"), BatchRouter(8, "p2")
    route(knows, alias_line("z", "Z", "B"))
    transfers = []
    for router in (knows, late):
        handoff = next(e for b in route(router, alias_line("al", "B", "A")).values()
                       for e in b.events if e.type == HANDOFF)
        transfers.append((handoff.data["to"], handoff.data["transfer"]))
    assert [to for to, _ in transfers] == ["Z", "B"]
    assert transfers[0][1] != transfers[1][1]


def test_links_committed_before_this_run_started_are_used_others_relearned() -> None:
    committed = [["A", "B", "s", 50], ["C", "D", "s", 500], ["E", "F", "other", 900]]
    router = BatchRouter(8, "s", links=lambda: committed)
    route(router, visit_line("v1", "A"))  # this run reads from position 0
    # A -> B was committed at 50, after where this run started: it is learned again when
    # its alias event is read; C -> D as well; another source's link holds at once
    assert router.identities.links == {"E": "F"}
    later = BatchRouter(8, "s", links=lambda: committed)
    raw = RawBatch([(100, visit_line("v1", "A"))], 200, source_id="s")
    later.route(raw)
    assert later.identities.links == {"A": "B", "E": "F"}


def test_a_link_at_the_position_a_partition_resumes_after_is_used() -> None:
    """A partition resumes after the last position every shard applied: its first batch is
    empty and carries that position. The alias event there is not read again, so its link
    must come from what the shards committed."""
    committed = [["A", "B", "s", 50]]
    router = BatchRouter(8, "s", links=lambda: committed)
    router.route(RawBatch([], 50, source_id="s"))
    batches = dict(router.route(RawBatch([(51, visit_line("v1", "A"))], 51, source_id="s")))
    survivor = batches[str(shard_of("B", 8))]
    assert isinstance(survivor, ShardBatch)
    assert [(e.event_id, e.customer_id) for e in survivor.events] == [("v1", "B")]


# ---------------------------------------------------------------------- transfers
def test_a_transfer_record_carries_the_state_or_nothing() -> None:
    state = CustomerState("A")
    assert decode_transfer(encode_transfer("A", "B", TS, state)).state is None
    state.profile.visit_count = 3
    transfer = decode_transfer(encode_transfer("A", "B", TS, state))
    assert (transfer.source, transfer.survivor, transfer.at) == ("A", "B", TS)
    assert transfer.state is not None and transfer.state.profile.visit_count == 3
    refused = decode_transfer(encode_transfer("A", "B", TS, None, "linked already"))
    assert refused.state is None and refused.note == "linked already"


# ---------------------------------------------------------------------- the merge rule
def profile(**fields: object) -> Profile:
    out = Profile()
    for name, value in fields.items():
        setattr(out, name, value)
    return out


def test_the_profile_rule() -> None:
    survivor = profile(
        email="b@example.com", consents={"email": True, "sms": True}, visit_count=2,
        total_spend=30.1, first_visit_at=TS, first_visit_amount=10.0,
        last_visit_at=TS + 5 * DAY, last_visit_amount=20.1, last_venue_id="v1",
        recent_visits=[TS, TS + 5 * DAY], recent_amounts=[10.0, 20.1],
        item_counts={"soup": 2}, points=100, points_earned=100, tags=["vip"],
        rating_count=1, rating_sum=5, last_rating=5, last_rating_at=TS,
        unsubscribed=["push"])
    merged = profile(
        email="a@example.com", phone="+4930", name="Ann",
        consents={"email": False, "whatsapp": True}, visit_count=1, total_spend=7.05,
        first_visit_at=TS - DAY, first_visit_amount=7.05, last_visit_at=TS - DAY,
        last_visit_amount=7.05, last_venue_id="v2", recent_visits=[TS - DAY],
        recent_amounts=[7.05], item_counts={"soup": 1, "tea": 4}, points=5,
        points_earned=5, tags=["lunch"], rating_count=2, rating_sum=6, last_rating=2,
        last_rating_at=TS + DAY, last_booking_at=TS + 9 * DAY, distinct_items=2)
    merge_profiles(survivor, merged)
    s = survivor
    assert (s.email, s.phone, s.name) == ("b@example.com", "+4930", "Ann")
    assert (s.visit_count, s.total_spend, s.points, s.points_earned) == (3, 37.15, 105, 105)
    assert (s.first_visit_at, s.first_visit_amount) == (TS - DAY, 7.05)
    assert (s.last_visit_at, s.last_venue_id) == (TS + 5 * DAY, "v1")
    assert s.recent_visits == [TS - DAY, TS, TS + 5 * DAY]
    assert s.recent_amounts == [7.05, 10.0, 20.1]
    assert s.item_counts == {"soup": 3, "tea": 4}
    assert s.distinct_items == 2
    assert (s.rating_count, s.rating_sum, s.last_rating) == (3, 11, 2)
    assert s.last_booking_at == TS + 9 * DAY
    assert s.tags == ["lunch", "vip"]
    # a refusal under either identity stands
    assert s.consents == {"email": False, "sms": True, "whatsapp": True, "push": False}
    assert s.unsubscribed == ["push"]


def test_presence_counters_are_added() -> None:
    """A wallet pass seen by sensors (the merged customer) and the till's customer: the
    guest's sightings are both customers' sightings."""
    from engine.core.events import Event
    from engine.core.presence import CUSTOMER_FIELDS, record_presence

    def seen(presence: dict | None, ts: int, venue: str, zone: str | None = None) -> dict:
        data = {"venue_id": venue} if zone is None else {"venue_id": venue, "zone": zone}
        return record_presence(presence, Event("p", "x", "presence", ts, data))

    hour = 3_600_000
    pass_seen = seen(seen(seen(None, TS, "v1", "toilets"), TS + 2 * DAY, "v1"),
                     TS + 4 * DAY, "v2", "shop")
    till = seen(seen(None, TS + DAY, "v3"), TS + 4 * DAY + hour // 4, "v1")
    survivor, merged = profile(presence=till), profile(presence=pass_seen)
    merge_profiles(survivor, merged)
    now = TS + 5 * DAY
    fields = {name: read(survivor.presence, now) for name, read in CUSTOMER_FIELDS.items()}
    assert fields["presence_count"] == 5
    assert fields["first_presence_at"] == TS
    assert (fields["last_presence_at"], fields["last_presence_venue_id"],
            fields["last_zone"]) == (TS + 4 * DAY + hour // 4, "v1", None)
    # TS + 4 days under both ids, a quarter of an hour apart: one stay
    assert fields["presences_30d"] == 4
    # one side only: kept as it is
    alone = profile(presence=None)
    merge_profiles(alone, profile(presence=seen(None, TS, "v1")))
    assert alone.presence is not None and alone.presence["n"] == 1


def test_counts_past_the_kept_number_drop_the_least_frequent() -> None:
    survivor = profile(item_counts={f"s{n:02}": 5 for n in range(TOP_COUNTS_KEPT)})
    merge_profiles(survivor, profile(item_counts={"new": 1, "s00": 1}))
    assert len(survivor.item_counts) == TOP_COUNTS_KEPT
    assert "new" not in survivor.item_counts and survivor.item_counts["s00"] == 6


def enrollment(journey: str, active: bool, vouchers: dict[str, str] | None = None
               ) -> Enrollment:
    return Enrollment(journey, 1, 1, TS, False, 0, TS, due_at=TS + DAY if active else None,
                      ended_at=None if active else TS, vouchers=vouchers or {})


def test_the_state_rule() -> None:
    survivor = CustomerState("B")
    survivor.enrollments = {"welcome": enrollment("welcome", True)}
    survivor.vouchers = {"B-1": Voucher("coffee", "welcome@1", TS, TS + DAY)}
    survivor.armed = {POINTS_EXPIRY: TS + 10 * DAY, "lost_regular": TS + 45 * DAY}
    survivor.seen = {1: TS, 2: TS + DAY}
    survivor.sent_log = [[TS + 2 * DAY, "email"]]
    merged = CustomerState("A")
    merged.enrollments = {"welcome": enrollment("welcome", True),
                          "birthday": enrollment("birthday", True, {"cake": "A-1"})}
    merged.vouchers = {"A-1": Voucher("cake", "birthday@1", TS, TS + DAY)}
    merged.armed = {POINTS_EXPIRY: TS + 20 * DAY, "lost_regular": TS + 30 * DAY,
                    "birthday": TS + 99 * DAY}
    merged.seen = {3: TS - DAY}
    merged.sent_log = [[TS + DAY, "sms"]]
    dropped = merge_states(survivor, merged)
    assert dropped == ["welcome"]
    assert survivor.enrollments["welcome"] is not merged.enrollments["welcome"]
    assert survivor.enrollments["birthday"] is merged.enrollments["birthday"]
    assert set(survivor.vouchers) == {"A-1", "B-1"}
    assert survivor.armed == {POINTS_EXPIRY: TS + 20 * DAY, "lost_regular": TS + 45 * DAY,
                              "birthday": TS + 99 * DAY}
    assert survivor.seen == {1: TS, 2: TS + DAY, 3: TS - DAY}
    assert survivor.sent_log == [[TS + DAY, "sms"], [TS + 2 * DAY, "email"]]
    assert survivor.next_due() == TS + DAY
    # the merged state is stored and read back as any other
    again = CustomerState.from_bytes("B", survivor.to_bytes())
    assert again.enrollments == survivor.enrollments and again.vouchers == survivor.vouchers


def test_the_duplicate_window_of_the_two_is_kept() -> None:
    survivor = CustomerState("B", seen_floor=TS, seen={1: TS + DAY})
    merged = CustomerState("A", seen_floor=TS - DAY, seen={2: TS - DAY, 3: TS + 2 * DAY})
    merge_states(survivor, merged)
    assert survivor.seen_floor == TS and survivor.seen == {1: TS + DAY, 3: TS + 2 * DAY}
    assert survivor.refuse_event("x", TS - 1, 30 * DAY) is not None  # older than the window


def test_histogram_values() -> None:
    state = CustomerState("A")
    assert histogram_values(state) == (None, None, None)
    state.profile.visit_count, state.profile.total_spend = 2, 30.0
    assert histogram_values(state) == (30.0, 15.0, 2)


def test_a_refused_hand_off_says_whether_it_repeats_or_contradicts_the_link() -> None:
    assert refusal_reason("anna", "bea", "bea", "al") == (
        "'anna' was handed off to 'bea' already; this hand-off (alias event 'al') repeats "
        "it and changes nothing")
    assert refusal_reason("anna", "bea", "cleo", "al") == (
        "'anna' is linked to 'bea' already; it is not linked to 'cleo' (alias event 'al')")
