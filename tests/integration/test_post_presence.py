"""Presence events and declared event types through the real dataflow: reference journey
11 (the Westfield post-presence thank-you) and a journey on a declared type."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import EXAMPLES, Engine, at, event, sends, visit

from engine.core.declared_events import install
from engine.core.runtime import stable_fraction
from engine.core.state import CustomerState
from engine.flow.routing import shard_of
from engine.storage.redis_client import connect
from engine.storage.store import ShardStore

pytestmark = pytest.mark.integration

JOURNEY = "post_presence_thanks"


def treated(count: int) -> list[str]:
    names = (f"guest{i}" for i in range(1000))
    return [n for n in names if stable_fraction(n, JOURNEY) >= 0.1][:count]


def seen(customer: str, when: str, zone: str = "toilets", source: str = "wallet_pass",
         mall: str = "westfield") -> dict:
    return event("presence", customer, when, venue_id=mall, zone=zone, source=source)


def stored(engine: Engine, customer: str) -> CustomerState:
    """The customer's state as the engine committed it."""
    client = connect(engine.redis_url)
    store = ShardStore(client, engine.prefix, shard_of(customer, engine.shards))
    return CustomerState.from_bytes(customer, client.get(store.customer_key(customer)))


@pytest.fixture(autouse=True)
def _no_declared_types() -> object:
    yield
    install()  # a test that declared types leaves none behind


def test_post_presence_thanks_variants(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = Engine(tmp_path, redis_url, key_prefix,
                    [str(EXAMPLES / "11_post_presence_thanks.yaml")], addresses=True)
    first, regular, dormant, vip, back, stay, wifi = treated(7)
    held = next(f"guest{i}" for i in range(1000) if stable_fraction(f"guest{i}", JOURNEY) < 0.1)
    # the mall's shoppers: 12 small spenders and a big one, so the big one is a VIP
    shoppers = [visit(f"s{i}", at(-30 - i), amount=20.0, venue="westfield") for i in range(12)]
    events = [
        *shoppers,
        visit(vip, at(-40), amount=900.0, venue="westfield"),
        # a regular: seen by Wi-Fi on three earlier days (Wi-Fi does not start the journey)
        *[seen(regular, at(day, 17), zone="food_court", source="wifi") for day in (-20, -9, -4)],
        seen(dormant, at(-200), source="wifi"),  # seen long ago, not since
        seen(first, at(0, 11)),
        seen(regular, at(0, 11), zone="shop_entrance"),
        seen(dormant, at(0, 11), zone="event_space"),
        seen(vip, at(0, 11)),
        seen(back, at(0, 11)),
        seen(back, at(1, 16), zone="shop_entrance"),  # back the next day: no incentive
        seen(stay, at(0, 11)),
        seen(stay, at(0, 11, 20), zone="shop_entrance"),  # the same stay: one thank-you
        seen(wifi, at(0, 11), source="wifi"),  # not a wallet pass
        seen(held, at(0, 11)),  # the holdout enters and gets nothing
        seen("parked", at(0, 11), zone="parking"),  # not one of the journey's zones
    ]
    events.append(visit("bystander", at(10), amount=1.0, venue="westfield", items=[]))
    events.sort(key=lambda e: e["ts"])
    commands = engine.run(events)
    mine = [c for c in commands if c["journey"] == JOURNEY]
    assert sends(mine, first) == [("thanks_first", 0), ("incentive_first", 2)]
    assert sends(mine, regular) == [("thanks_regular", 0), ("incentive_regular", 2)]
    assert sends(mine, dormant) == [("thanks_dormant", 0), ("incentive_dormant", 2)]
    assert sends(mine, vip) == [("thanks_vip", 0), ("incentive_vip", 2)]
    assert sends(mine, back) == [("thanks_first", 0)]  # came back on day 1
    assert sends(mine, stay) == [("thanks_first", 0), ("incentive_first", 2)]
    for nobody in (wifi, held, "parked"):
        assert sends(mine, nobody) == []
    thanks = next(c for c in mine if c["customer_id"] == first)
    assert thanks["channel"] == "push" and thanks["vars"]["mall"] == "westfield"
    assert thanks["send_at"] == "2025-03-03T13:00:00.000Z"  # 11:00+01:00 plus 3h
    incentive = next(c for c in mine if c["customer_id"] == vip and c["channel"] == "email")
    assert incentive["template"] == "presence_incentive_vip"
    assert incentive["vars"]["code"].startswith("VIPLOUNGE-")
    stats = engine.stats()
    assert stats[f"{JOURNEY}@1|entered"] == 6
    assert stats[f"{JOURNEY}@1|entered_holdout"] == 1
    assert stats[f"{JOURNEY}@1|exit:came_back"] == 1
    assert stats[f"{JOURNEY}@1|goal"] == 1
    # presence never counts as a visit: the first-timer has presences and no visits
    state = stored(engine, first)
    presence = state.profile.presence
    assert presence is not None and presence["n"] == 1 and presence["z"] == "toilets"
    assert state.profile.visit_count == 0 and state.profile.total_spend == 0


def test_bad_presence_events_go_to_dead_letters(tmp_path: Path, redis_url: str,
                                                key_prefix: str) -> None:
    engine = Engine(tmp_path, redis_url, key_prefix,
                    [str(EXAMPLES / "11_post_presence_thanks.yaml")])
    engine.run([
        seen("a", at(0), zone="toilet"),
        seen("b", at(0), source="bluetooth"),
        event("presence", "c", at(0), zone="toilets"),
    ])
    reasons = [d["reason"] for d in engine.dead_letters()]
    assert any("'zone' must be one of" in r and "did you mean 'toilets'?" in r
               for r in reasons)
    assert any("'source' must be one of" in r for r in reasons)
    assert any("venue_id" in r for r in reasons)
    assert len(reasons) == 3


DECLARED = """\
types:
  table_booked:
    venue: true
    fields:
      party_size: {type: int, min: 1, max: 1000}
      booked_for: {type: datetime, required: true}
      area: {type: text, values: [inside, terrace]}
  ticket_scanned:
    venue: true
    visit: true
    fields:
      amount: number
presence_zones: [cloakroom]
"""

BOOKED = """\
journey: booked_thanks
version: 1
entry:
  event: table_booked
  when: "event.party_size >= 4 and event.area == 'terrace'"
exit:
  - event: ticket_scanned
    reason: came
steps:
  - id: thanks
    after: 1h
    actions:
      - send: push
        template: booked_thanks
  - id: seen
    wait_for:
      event: presence
      when: "event.zone == 'cloakroom'"
      timeout: 3d
      on_timeout: end
    next: hello
  - id: hello
    actions:
      - send: push
        template: cloakroom_hello
"""


def test_declared_event_types(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    types_file = tmp_path / "event_types.yaml"
    types_file.write_text(DECLARED)
    journey = tmp_path / "booked.yaml"
    journey.write_text(BOOKED)
    engine = Engine(tmp_path, redis_url, key_prefix, [str(journey)],
                    event_types=str(types_file))
    booked = {"venue_id": "v1", "booked_for": "2025-03-08T19:30:00+01:00"}
    commands = engine.run(sorted([
        event("table_booked", "ann", at(0), party_size=4, area="terrace", **booked),
        event("table_booked", "bob", at(0), party_size=2, area="terrace", **booked),
        event("table_booked", "cat", at(0), party_size=6, area="terrace", **booked),
        event("ticket_scanned", "cat", at(0, 12, 30), venue_id="v1", amount=25.0),
        event("presence", "ann", at(1), venue_id="v1", zone="cloakroom"),
        event("table_booked", "dan", at(0), party_size="four", area="terrace", **booked),
        event("table_booked", "eve", at(0), party_size=4, area="terace", **booked),
        event("table_booked", "fay", at(0), party_size=4, venue_id="v1"),
        event("table_booked", "gus", at(0), party_size=4, booked_for="tomorrow",
              venue_id="v1"),
        event("visit", "zed", at(5), venue_id="v1", amount=1.0),
    ], key=lambda e: e["ts"]))
    assert sends(commands, "ann") == [("thanks", 0), ("hello", 1)]
    assert sends(commands, "bob") == []  # a party of two
    assert sends(commands, "cat") == []  # scanned a ticket within the hour: exit
    reasons = sorted(d["reason"] for d in engine.dead_letters())
    assert reasons == [
        "'area' must be one of inside, terrace, got 'terace' (did you mean 'terrace'?)",
        "'booked_for' must be an ISO-8601 date and time, got 'tomorrow'",
        "'party_size' must be a whole number, got 'four'",
        "missing 'booked_for' (a datetime field of table_booked events)",
    ]
    # a declared visit counts as a visit, with its amount as the spend
    state = stored(engine, "cat")
    assert state.profile.visit_count == 1 and state.profile.total_spend == 25.0
    assert engine.stats()["booked_thanks@1|exit:came"] == 1
