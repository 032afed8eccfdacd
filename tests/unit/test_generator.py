"""The seeded venue-chain generator: determinism, order, schema and the behaviours journeys need."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.app.generator import (
    CATEGORIES,
    DAY_MS,
    SIGNATURE_ITEM,
    ChainConfig,
    GeneratorConfigError,
    generate_events,
    write_jsonl,
)
from engine.app.generator_cli import main as cli_main

SMALL = ChainConfig(seed=3, customers=300, venues=4, days=200)
COMMON = {"event_id": str, "customer_id": str, "type": str, "ts": str}
SCHEMAS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "visit": {
        "venue_id": str,
        "amount": float,
        "currency": str,
        "items": list,
        "party_size": int,
        "channel": str,
        "source": str,
    },
    "rating": {"stars": int, "venue_id": str},
    "profile": {
        "name": str,
        "email": str,
        "phone": str,
        "birthday": str,
        "timezone": str,
        "language": str,
        "consents": dict,
    },
    "booking": {"venue_id": str, "party_size": int, "booked_for": str, "source": str},
    "points": {"kind": str, "amount": int},
    "voucher_redeemed": {"voucher_id": str, "venue_id": str},
}


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(generate_events(SMALL))


def _ms(ts: str | int) -> int:
    if isinstance(ts, int):
        return ts
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def _visits_by_customer(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    visits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["type"] == "visit":
            visits[event["customer_id"]].append(event)
    return visits


def test_same_seed_same_events_and_other_seed_differs(events: list[dict[str, Any]]) -> None:
    assert list(generate_events(SMALL)) == events
    other = list(generate_events(ChainConfig(seed=4, customers=300, venues=4, days=200)))
    assert other != events


def test_is_a_lazy_stream() -> None:
    stream = generate_events(ChainConfig(customers=10_000_000, days=365))
    assert iter(stream) is stream
    assert len(list(itertools.islice(stream, 200))) == 200


def test_timestamps_never_go_back_and_stay_in_the_period(events: list[dict[str, Any]]) -> None:
    stamps = [_ms(event["ts"]) for event in events]
    assert stamps == sorted(stamps)
    start = _ms("2025-01-01T00:00:00+01:00")
    assert start <= stamps[0] and stamps[-1] < start + SMALL.days * DAY_MS
    assert all(event["ts"][-6:] in ("+01:00", "+02:00") for event in events)


def test_event_ids_are_unique_and_in_order(events: list[dict[str, Any]]) -> None:
    ids = [event["event_id"] for event in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_each_event_type_has_its_fields(events: list[dict[str, Any]]) -> None:
    for event in events:
        schema = {**COMMON, **SCHEMAS[event["type"]]}
        for name, kind in schema.items():
            assert isinstance(event.get(name), kind), (name, event)
    visit = next(e for e in events if e["type"] == "visit")
    assert visit["currency"] == "EUR"
    for event in events:
        if event["type"] == "visit":
            assert event["channel"] in ("dine-in", "takeaway", "delivery")
            assert event["source"] in ("pos", "booking_platform", "app")
            assert event["items"] and event["party_size"] >= 1
            total = sum(item["price"] * item["quantity"] for item in event["items"])
            assert event["amount"] == pytest.approx(total, abs=0.01)
            assert round(event["amount"], 2) == event["amount"]
            for item in event["items"]:
                assert item["category"] in CATEGORIES and item["quantity"] >= 1
        elif event["type"] == "rating":
            assert 1 <= event["stars"] <= 5
        elif event["type"] == "profile":
            assert set(event["consents"]) == {"email", "sms", "whatsapp", "push"}
            assert event["language"] in ("en", "de", "fr")
            assert event["timezone"].startswith("Europe/")
            datetime.strptime(event["birthday"], "%Y-%m-%d")
        elif event["type"] == "points":
            assert event["kind"] in ("earned", "spent") and event["amount"] > 0
        elif event["type"] == "booking":
            assert datetime.fromisoformat(event["booked_for"]).utcoffset() is not None


def test_events_pass_the_engine_validator(events: list[dict[str, Any]]) -> None:
    validator = pytest.importorskip("engine.core.events")
    for event in events:
        validator.validate_event(orjson.loads(orjson.dumps(event)))


def test_mix_of_event_types(events: list[dict[str, Any]]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for event in events:
        counts[event["type"]] += 1
    for kind in ("visit", "rating", "profile", "booking", "points"):
        assert counts[kind] > 0, counts
    assert counts["visit"] > counts["rating"]
    assert "message" not in counts and "voucher_redeemed" not in counts
    spent = [e for e in events if e["type"] == "points" and e["kind"] == "spent"]
    assert spent


def test_every_customer_starts_with_a_profile(events: list[dict[str, Any]]) -> None:
    first: dict[str, str] = {}
    for event in events:
        first.setdefault(event["customer_id"], event["type"])
    assert sorted(first) == [f"c{n:06d}" for n in range(1, SMALL.customers + 1)]
    assert set(first.values()) == {"profile"}


def test_bookings_precede_their_visits(events: list[dict[str, Any]]) -> None:
    booked = [e for e in events if e["type"] == "booking"]
    visits = _visits_by_customer(events)
    for booking in booked:
        seat = _ms(booking["booked_for"])
        assert _ms(booking["ts"]) < seat
        assert any(0 < _ms(v["ts"]) - seat <= 2 * 3600_000 for v in visits[booking["customer_id"]])


def test_some_regulars_lapse_after_four_visits_in_90_days(events: list[dict[str, Any]]) -> None:
    end = _ms(events[-1]["ts"])
    lapsed = set()
    for customer, visits in _visits_by_customer(events).items():
        stamps = [_ms(v["ts"]) for v in visits]
        for i in range(3, len(stamps)):
            next_visit = stamps[i + 1] if i + 1 < len(stamps) else end
            if stamps[i] - stamps[i - 3] <= 90 * DAY_MS and next_visit - stamps[i] >= 45 * DAY_MS:
                lapsed.add(customer)
    assert len(lapsed) >= 5


def test_some_first_visits_are_rated_five_stars_with_high_spend(
    events: list[dict[str, Any]],
) -> None:
    amounts: dict[str, list[float]] = defaultdict(list)
    first_visit: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["type"] == "visit":
            amounts[event["venue_id"]].append(event["amount"])
            first_visit.setdefault(event["customer_id"], event)
    average = {venue: sum(values) / len(values) for venue, values in amounts.items()}
    impressed = 0
    for event in events:
        visit = first_visit.get(event["customer_id"])
        if event["type"] != "rating" or visit is None or event["stars"] != 5:
            continue
        delay = _ms(event["ts"]) - _ms(visit["ts"])
        if 0 < delay <= 2 * 3600_000 and visit["amount"] > average[visit["venue_id"]]:
            impressed += 1
    assert impressed >= 10


def test_visit_times_follow_dayparts_and_the_signature_steak_sells(
    events: list[dict[str, Any]],
) -> None:
    visits = [e for e in events if e["type"] == "visit"]
    for visit in visits:
        local = datetime.fromisoformat(visit["ts"])
        minutes = local.hour * 60 + local.minute
        assert 7 * 60 + 30 <= minutes <= 22 * 60, visit["ts"]
    names = {item["name"] for visit in visits for item in visit["items"]}
    assert SIGNATURE_ITEM in names


def test_epoch_ms_format_matches_iso() -> None:
    config = ChainConfig(seed=5, customers=150, days=400, start="2025-03-01")
    iso = list(generate_events(config))
    ms = list(generate_events(ChainConfig(**{**config.__dict__, "ts_format": "ms"})))
    assert len(iso) == len(ms)
    for a, b in zip(iso, ms, strict=True):
        assert isinstance(b["ts"], int)
        assert _ms(a["ts"]) == b["ts"]
        assert {**a, "ts": 0} == {**b, "ts": 0}


def test_write_jsonl_round_trips(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    path = tmp_path / "events.jsonl"
    count = write_jsonl(SMALL, path)
    lines = path.read_bytes().splitlines()
    assert count == len(lines) == len(events)
    assert [orjson.loads(line) for line in lines] == events


def test_cli_writes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.jsonl"
    assert cli_main(["--customers", "40", "--days", "20", "--seed", "1", "--out", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    assert lines and f"{len(lines)} events" in capsys.readouterr().err
    expected = list(generate_events(ChainConfig(seed=1, customers=40, days=20)))
    assert [orjson.loads(line) for line in lines] == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"customers": -1},
        {"venues": 0},
        {"days": 0},
        {"ts_format": "unix"},
        {"start": "first of may"},
    ],
)
def test_bad_config_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(GeneratorConfigError):
        ChainConfig(**bad)


def test_realistic_size_for_the_default_chain() -> None:
    count = sum(1 for _ in generate_events(ChainConfig()))
    assert 15_000 <= count <= 40_000
