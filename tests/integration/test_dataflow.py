"""The real dataflow over a real Redis: determinism, replay, resume, dead letters, versions."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import redis
from harness import Engine, at, event, read_jsonl, sends, visit, with_addresses

from engine.core.catalog import CatalogError
from engine.flow.runner import RunOptions, run_on
from engine.storage.store import ShardStore
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

WELCOME = """\
journey: welcome
version: {version}
entry:
  event: visit
  when: "customer.visit_count == 1"
goal:
  event: visit
  within: 30d
exit:
  - event: rating
    when: "event.stars <= 2"
    reason: unhappy
offers:
  coffee:
    description: Free coffee
    dayparts: [breakfast, lunch]
    valid_for: 14d
steps:
  - id: hello
    at: day 1
    actions:
      - issue: coffee
      - send: email
        template: hello
        vars: {{dish: "customer.favourite_item"}}
  - id: nudge
    at: day {nudge_day}
    if: "not offer.coffee.redeemed"
    actions:
      - send: sms
        template: nudge
"""


def write_journey(folder: Path, version: int = 1, nudge_day: int = 5) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "welcome.yaml"
    path.write_text(WELCOME.format(version=version, nudge_day=nudge_day))
    return str(folder)


def many_customers(count: int) -> list[dict]:
    events = []
    for index in range(count):
        customer = f"c{index:03d}"
        events.append(visit(customer, at(index % 9, 12), amount=20 + index))
        if index % 3 == 0:
            events.append(visit(customer, at(index % 9 + 3, 13)))
    events.append(visit("tail", at(30)))
    events.sort(key=lambda e: e["ts"])
    return events


@pytest.fixture
def engine(tmp_path: Path, redis_url: str, key_prefix: str) -> Engine:
    return Engine(tmp_path, redis_url, key_prefix, [write_journey(tmp_path / "journeys")],
                  addresses=True)


def test_steps_fire_in_event_time_with_offers_and_guards(engine: Engine) -> None:
    events = [
        visit("ann", at(0)),
        visit("bob", at(0, 19)),
        event("voucher_redeemed", "bob", at(2, 12), voucher_id="PLACEHOLDER"),
        visit("zed", at(20)),
    ]
    commands = engine.run(events)
    assert sends(commands, "ann") == [("hello", 1), ("nudge", 5)]
    hello = next(c for c in commands if c["customer_id"] == "ann" and c["step"] == "hello")
    assert hello["channel"] == "email" and hello["template"] == "hello"
    assert hello["vars"]["dish"] == "pasta"
    assert hello["vars"]["voucher_code"].startswith("COFFEE-")
    assert hello["journey"] == "welcome" and hello["version"] == 1
    assert len(hello["command_id"]) == 32


def test_redeemed_offer_skips_the_guarded_step(engine: Engine) -> None:
    first = engine.run([visit("ann", at(0)), visit("zed", at(2))])
    code = first[0]["vars"]["voucher_code"]
    commands = engine.run([
        event("voucher_redeemed", "ann", at(3, 12), voucher_id=code),
        visit("zed", at(20)),
    ])
    assert sends(commands, "ann") == []
    stats = engine.stats()
    assert stats["welcome@1|voucher_redeemed:coffee"] == 1
    assert stats["welcome@1|skipped:nudge"] == 1


def test_redemption_outside_the_offer_dayparts_is_refused(engine: Engine) -> None:
    first = engine.run([visit("ann", at(0)), visit("zed", at(2))])
    code = first[0]["vars"]["voucher_code"]
    commands = engine.run([
        event("voucher_redeemed", "ann", at(3, 20), voucher_id=code),  # dinner: not allowed
        visit("zed", at(20)),
    ])
    assert sends(commands, "ann") == [("nudge", 5)]
    assert engine.stats()["welcome@1|voucher_rejected:daypart"] == 1


def test_exit_ends_the_journey_at_once(engine: Engine) -> None:
    commands = engine.run([
        visit("ann", at(0)),
        event("rating", "ann", at(2), stars=1),
        visit("zed", at(20)),
    ])
    assert sends(commands, "ann") == [("hello", 1)]
    assert engine.stats()["welcome@1|exit:unhappy"] == 1


def test_same_input_twice_from_empty_state_gives_identical_bytes(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    journeys = [write_journey(tmp_path / "journeys")]
    events = many_customers(60)
    outputs = []
    for attempt in ("a", "b"):
        engine = Engine(tmp_path / attempt, redis_url, f"{key_prefix}{attempt}", journeys,
                        addresses=True)
        engine.workdir.mkdir()
        engine.run(events, name="events.jsonl", source_id="same-source")
        outputs.append((engine.workdir / "commands-1.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") >= 100


def test_replaying_a_file_on_kept_state_emits_nothing(engine: Engine) -> None:
    events = many_customers(40)
    first = engine.run(events, name="events.jsonl")
    client = redis.Redis.from_url(engine.redis_url)
    assert all(not ShardStore(client, engine.prefix, shard).pending_outbox()
               for shard in range(engine.shards))  # the sink acknowledged every command
    stats_before = engine.stats()
    again = engine.run(events, name="events.jsonl")
    assert first and again == []
    assert engine.stats() == stats_before


def test_appended_lines_resume_where_the_last_run_stopped(engine: Engine) -> None:
    events = with_addresses(many_customers(30))
    whole = Engine(engine.workdir / "whole", engine.redis_url, engine.prefix + "w",
                   engine.journeys, addresses=True)
    whole.workdir.mkdir()
    expected = whole.run(events, name="events.jsonl", source_id="feed")
    half = len(events) // 2
    part1 = engine.run(events[:half], name="events.jsonl", source_id="feed")
    path = engine.workdir / "events.jsonl"
    with path.open("ab") as handle:
        handle.write(b"".join(orjson.dumps(e) + b"\n" for e in events[half:]))
    part2 = engine.run(path.read_bytes(), name="events.jsonl", source_id="feed")
    assert sorted(c["command_id"] for c in part1 + part2) == sorted(
        c["command_id"] for c in expected)


def test_bad_events_go_to_the_dead_letter_and_the_run_goes_on(engine: Engine) -> None:
    good = visit("ann", at(0))
    lines = [
        b"{not json",
        orjson.dumps({"event_id": "x1", "type": "visit", "ts": at(0), "amount": 3,
                      "venue_id": "v"}),
        orjson.dumps({"event_id": "x2", "customer_id": "c", "type": "teleport", "ts": at(0)}),
        orjson.dumps({"event_id": "x3", "customer_id": "c", "type": "visit", "ts": at(0),
                      "venue_id": "v", "amount": "lots"}),
        orjson.dumps({"event_id": "x4", "customer_id": "c", "type": "rating", "ts": at(0),
                      "stars": 9}),
        b"\xff\xfe\x00garbage",
        orjson.dumps([1, 2, 3]),
        orjson.dumps(event("profile", "ann", at(0), email="ann@example.com",
                           phone="+4930123456")),
        orjson.dumps(good),
        orjson.dumps(good),
        orjson.dumps({**visit("ann", at(900)), "event_id": "far"}),
        orjson.dumps(visit("zed", at(10))),
    ]
    commands = engine.run(b"\n".join(lines) + b"\n")
    assert sends(commands, "ann") == [("hello", 1), ("nudge", 5)]
    dead = engine.dead_letters()
    reasons = [d["reason"] for d in dead]
    assert len(dead) == 9
    assert any(r.startswith("not valid JSON") for r in reasons)
    assert "missing or empty 'customer_id'" in reasons
    assert any("unknown event type 'teleport'" in r for r in reasons)
    assert "'amount' must be a number, got 'lots'" in reasons
    assert any("'stars' must be a whole number from 1 to 5" in r for r in reasons)
    assert any("already applied" in r for r in reasons)
    assert any("days ahead of the stream's clock" in r for r in reasons)
    assert any("raw_base64" in d for d in dead)
    assert all("position" in d and ("raw" in d or "raw_base64" in d) for d in dead)


def test_in_flight_customers_stay_on_their_version(engine: Engine, tmp_path: Path) -> None:
    first = engine.run([visit("ann", at(0)), visit("zed", at(2))])
    assert sends(first, "ann") == [("hello", 1)]
    folder = tmp_path / "journeys"
    (folder / "welcome.yaml").write_text(WELCOME.format(version=1, nudge_day=9))
    with pytest.raises(CatalogError, match="give the changed journey a new version"):
        engine.run([visit("zed", at(3))])
    (folder / "welcome.yaml").write_text(WELCOME.format(version=2, nudge_day=9))
    commands = engine.run([visit("bea", at(4)), visit("zed", at(30))])
    assert sends(commands, "ann") == [("nudge", 5)]  # version 1: day 5
    assert sends(commands, "bea") == [("hello", 5), ("nudge", 13)]  # version 2: day 9
    assert {c["version"] for c in commands if c["customer_id"] == "bea"} == {2}


def test_holdout_customers_enter_but_get_nothing(tmp_path: Path, redis_url: str,
                                                 key_prefix: str) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "welcome.yaml").write_text(
        WELCOME.format(version=1, nudge_day=5).replace("entry:", "holdout: 50%\nentry:"))
    engine = Engine(tmp_path, redis_url, key_prefix, [str(folder)], addresses=True)
    events = [visit(f"c{i}", at(0)) for i in range(200)] + [visit("zed", at(20))]
    commands = engine.run(events)
    stats = engine.stats()
    treated, held = stats["welcome@1|entered"], stats["welcome@1|entered_holdout"]
    assert treated + held == 201
    assert 70 <= held <= 130
    assert len({c["customer_id"] for c in commands}) == treated


def test_wall_clock_fires_timers_with_no_traffic(tmp_path: Path, redis_url: str,
                                                 key_prefix: str) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "ping.yaml").write_text(
        "journey: ping\nversion: 1\nentry:\n  event: visit\nsteps:\n"
        "  - id: later\n    after: 2s\n    actions:\n      - send: push\n"
        "        template: later\n")
    now_ms = int(time.time() * 1000)
    events_path = tmp_path / "events.jsonl"
    events_path.write_bytes(orjson.dumps(
        {"event_id": "w1", "customer_id": "ann", "type": "visit", "ts": now_ms,
         "venue_id": "v1", "amount": 10}) + b"\n")
    options = RunOptions(
        journeys=[str(folder)], events=str(events_path), commands=str(tmp_path / "out.jsonl"),
        dead_letter=str(tmp_path / "dead.jsonl"), redis_url=redis_url, prefix=key_prefix,
        shards=2, clock="wall", tail=True, tick_s=0.2, idle_exit_s=4.0,
    )
    summary = run_on(redis_url, options, load_journeys(options.journeys))
    commands = read_jsonl(tmp_path / "out.jsonl")
    assert [c["step"] for c in commands] == ["later"]
    assert summary.seconds >= 2.0
