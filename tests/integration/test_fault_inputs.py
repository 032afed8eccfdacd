"""Malformed input through the real dataflow: dead letters keep the raw bytes, runs go on."""

from __future__ import annotations

import base64
import hashlib
import itertools
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from harness import Engine, at, event, visit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.events import MAX_LINE_BYTES
from engine.core.state import CustomerState, event_id_hash
from engine.storage.store import shard_tag

pytestmark = pytest.mark.integration

HELLO = """\
journey: hello
version: 1
entry:
  event: visit
steps:
  - id: hello
    at: day 1
    actions:
      - send: webhook    # addressed by customer id: every customer of the input can get it
        template: hello
"""


def write_journey(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hello.yaml").write_text(HELLO)
    return str(folder)


def raw_of(dead: dict[str, Any]) -> bytes:
    """The input bytes a dead letter carries."""
    if "raw_base64" in dead:
        return base64.b64decode(dead["raw_base64"])
    return str(dead["raw"]).encode("utf-8")


def applied_event_ids(client: redis.Redis, prefix: str, shards: int) -> list[int]:
    """The hashes of the event ids recorded in every customer's state (those inside the
    duplicate window)."""
    ids: list[int] = []
    for shard in range(shards):
        for key in client.scan_iter(match=f"{shard_tag(prefix, shard)}:c:*", count=1000):
            state = client.get(key)
            if state:
                key_name = key.decode().rsplit(":c:", 1)[1]
                ids.extend(CustomerState.from_bytes(key_name, state).seen)
    return ids


def hellos(commands: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for command in commands:
        if command["step"] == "hello":
            counts[command["customer_id"]] = counts.get(command["customer_id"], 0) + 1
    return counts


def bad_corpus() -> list[tuple[str, bytes]]:
    """(what is wrong, the line) for every kind of malformed input."""
    base = {"event_id": "b", "customer_id": "bad", "type": "visit", "ts": at(1),
            "venue_id": "v1", "amount": 10}

    def line(**changes: Any) -> bytes:
        return orjson.dumps({**base, **changes})

    huge = orjson.dumps({**base, "event_id": "huge", "pad": "x" * 10_000_000})
    assert len(huge) > 10 * MAX_LINE_BYTES
    nested = (b'{"event_id":"deep","customer_id":"bad","type":"visit","ts":"' + at(1).encode()
              + b'","venue_id":"v1","amount":1,"extra":' + b"[" * 5000 + b"]" * 5000 + b"}")
    return [
        ("bad JSON", b'{"event_id": "j1", "customer_id": "bad", "type": "visit",'),
        ("amount as a string", line(event_id="s1", amount="12.50")),
        ("stars 9", line(event_id="r1", type="rating", stars=9)),
        ("items not a list", line(event_id="i1", items="pasta")),
        ("missing customer_id", orjson.dumps(
            {k: v for k, v in base.items() if k != "customer_id"} | {"event_id": "m1"})),
        ("unknown type", line(event_id="u1", type="teleport")),
        ("10 MB line", huge),
        ("non-UTF-8 bytes", b'{"event_id":"n1","customer_id":"\xff\xfe\xc3(","type":"visit"}'),
        ("non-UTF-8 garbage", b"\xff\xfe\x00\x80garbage\xc0\xaf"),
        ("a JSON array", orjson.dumps([base])),
        ("an empty object", b"{}"),
        ("NaN amount", line(event_id="nan1").replace(b'"amount":10', b'"amount":NaN')),
        ("Infinity ts", line(event_id="inf1").replace(
            b'"ts":"' + at(1).encode() + b'"', b'"ts":Infinity')),
        ("overflowing amount", line(event_id="big1").replace(b'"amount":10', b'"amount":1e999')),
        ("deeply nested JSON", nested),
        ("100k-item items list", line(event_id="k1", items=[0] * 100_000)),
        ("a bare string", b'"visit"'),
    ]


def test_malformed_events_are_dead_lettered_intact_and_good_ones_all_land(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = Engine(tmp_path, redis_url, key_prefix, [write_journey(tmp_path / "journeys")])
    good = [visit(f"g{index}", at(index % 4, 10 + index % 8)) for index in range(12)]
    good.sort(key=lambda e: e["ts"])
    bad = bad_corpus()
    late = visit("late", at(0, 8))  # two days behind the clock when it arrives: still applied
    lines: list[tuple[str, bytes]] = []  # (kind or "" for good, line)
    for index, (kind, bad_line) in enumerate(bad):
        if index < len(good):
            lines.append(("", orjson.dumps(good[index])))
        lines.append((kind, bad_line))
    lines.append(("duplicate event id", orjson.dumps(good[0])))
    lines.append(("", orjson.dumps(late)))
    lines.append(("far future", orjson.dumps(
        {**visit("future", "2099-06-01T12:00:00+00:00"), "event_id": "far"})))
    lines.append(("", orjson.dumps(visit("zed", at(10)))))  # moves the clock past day 1
    positions: dict[int, tuple[str, bytes]] = {}
    offset = 0
    for kind, data in lines:
        assert b"\n" not in data
        positions[offset] = (kind, data)
        offset += len(data) + 1
    payload = b"".join(data + b"\n" for _, data in lines)

    commands = engine.run(payload)

    dead = engine.dead_letters()
    expected_bad = {pos: kd for pos, kd in positions.items() if kd[0]}
    assert sorted(d["position"] for d in dead) == sorted(expected_bad)
    for letter in dead:
        kind, data = expected_bad[letter["position"]]
        assert isinstance(letter["reason"], str) and letter["reason"].strip(), kind
        if kind == "duplicate event id":
            # the processor re-encodes the event rather than keeping the line; see
            # test_a_duplicate_event_is_dead_lettered_with_its_raw_line
            assert "already applied" in letter["reason"]
            continue
        if letter.get("raw_truncated"):  # a long line keeps its start, length and hash
            assert data.startswith(raw_of(letter)), kind
            assert letter["raw_length"] == len(data), kind
            assert letter["raw_sha256"] == hashlib.sha256(data).hexdigest(), kind
            continue
        assert raw_of(letter) == data, kind
    reasons = {expected_bad[d["position"]][0]: d["reason"] for d in dead}
    assert "exceeds" in reasons["10 MB line"]
    assert reasons["far future"].startswith("'ts' is ") and "days ahead" in reasons["far future"]
    assert reasons["bad JSON"].startswith("not valid JSON")
    huge = next(d for d in dead if expected_bad[d["position"]][0] == "10 MB line")
    assert huge["raw_truncated"] and huge["raw_length"] == len(dict(bad)["10 MB line"])
    non_utf8 = next(d for d in dead if expected_bad[d["position"]][0] == "non-UTF-8 bytes")
    assert "raw_base64" in non_utf8
    assert base64.b64decode(non_utf8["raw_base64"]) == dict(bad)["non-UTF-8 bytes"]

    summary = engine.summaries[-1]
    assert summary.events_read == len(lines)
    received = hellos(commands)
    for customer in [e["customer_id"] for e in good] + ["late"]:
        assert received.get(customer) == 1, customer
    assert set(received) == {e["customer_id"] for e in good} | {"late"}
    applied = applied_event_ids(redis.Redis.from_url(redis_url), key_prefix, engine.shards)
    assert event_id_hash(late["event_id"]) in applied
    assert len(applied) == len(lines) - len(dead)


def test_a_duplicate_event_is_dead_lettered_with_its_raw_line(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = Engine(tmp_path, redis_url, key_prefix, [write_journey(tmp_path / "journeys")])
    line = orjson.dumps(visit("ann", at(0)))
    engine.run(line + b"\n" + line + b"\n")
    dead = engine.dead_letters()
    assert len(dead) == 1 and "already applied" in dead[0]["reason"]
    assert raw_of(dead[0]) == line


def test_a_timezone_naming_a_zoneinfo_folder_is_a_dead_letter(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = Engine(tmp_path, redis_url, key_prefix, [write_journey(tmp_path / "journeys")])
    bad = orjson.dumps(event("profile", "ann", at(0), timezone="America"))
    engine.run(bad + b"\n" + orjson.dumps(visit("bob", at(3))) + b"\n")
    assert [raw_of(d) for d in engine.dead_letters()] == [bad]


def test_a_far_future_event_first_in_a_resumed_run_is_a_dead_letter(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = Engine(tmp_path, redis_url, key_prefix, [write_journey(tmp_path / "journeys")])
    assert engine.run([visit("ann", at(0))]) == []  # hello is due at day 1
    far = {**visit("bob", "2099-06-01T12:00:00+00:00"), "event_id": "far"}
    commands = engine.run([far, visit("zed", at(0, 13))])
    assert [d["position"] for d in engine.dead_letters()] == [0]
    assert commands == []  # the stream is still on day 0: no day-1 step may fire


# -- generated input -------------------------------------------------------------------------

_ids = st.one_of(st.text(max_size=8), st.integers(-5, 10**6), st.none(), st.booleans(),
                 st.just("x" * 201))
_timestamps = st.one_of(
    st.floats(0, 5).map(lambda day: at(day)),  # valid, inside the scenario
    st.integers(1_740_960_000_000, 1_741_392_000_000),  # valid epoch ms, 2025-03-03 .. 08
    st.sampled_from(["2025-03-03T12:00:00", "yesterday", "", "2025-13-40T00:00:00Z"]),
    st.integers(-(2**40), 946_684_799_999), st.integers(4_102_444_800_000, 2**62),
    st.none(), st.booleans(), st.lists(st.integers(-9, 9), max_size=2),
)
_numbers = st.one_of(st.integers(-10, 10**7), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(max_size=4), st.booleans(), st.none())
_items = st.one_of(
    st.lists(st.fixed_dictionaries({"name": st.text(max_size=6)},
                                   optional={"price": _numbers, "category": _ids}), max_size=3),
    st.text(max_size=4), st.lists(st.integers(-9, 9), max_size=3), st.none())
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": _ids,
        "customer_id": st.one_of(st.sampled_from(["h1", "h2", "h3"]), _ids),
        "type": st.one_of(st.sampled_from(
            ["visit", "rating", "voucher_redeemed", "booking", "profile", "message", "points",
             "teleport", "VISIT"]), _ids),
        "ts": _timestamps,
        "amount": _numbers, "venue_id": _ids, "stars": _numbers, "items": _items,
        "party_size": _numbers, "voucher_id": _ids, "status": _ids, "kind": _ids,
        # zone folders ("America") and over-long names are refused like unknown zones
        "timezone": st.sampled_from(["Europe/Berlin", "Mars/Olympus", "", "../etc", "UTC",
                                     "America", "a" * 300]),
        "birthday": st.sampled_from(["1990-05-17", "05-17", "13-01", "x", "1990-02-31"]),
        "consents": st.one_of(st.dictionaries(st.sampled_from(["email", "sms"]), st.booleans(),
                                              max_size=2), st.text(max_size=3)),
        "name": _ids, "email": _ids,
    })
_garbage = st.sampled_from([b"{", b"[1,2]", b"null", b"\xff\xfe", b'{"a": NaN}', b"{}", b"42"])
_line = st.one_of(_event_like.map(orjson.dumps), _garbage)
_generated = itertools.count()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(noise=st.lists(_line, max_size=8), places=st.lists(st.integers(0, 8), min_size=3,
                                                          max_size=3))
def test_generated_event_like_input_never_stops_the_run(
        redis_url: str, key_prefix: str, noise: list[bytes], places: list[int]) -> None:
    prefix = f"{key_prefix}-{next(_generated)}"
    good = [orjson.dumps(visit(f"fixed-{index}", at(index, 9))) for index in range(3)]
    lines = list(noise)
    for index, line in enumerate(good):
        lines.insert(min(places[index], len(lines)), line)
    lines.append(orjson.dumps(visit("fixed-tail", at(10))))
    lines = [line for line in lines if line.strip()]
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        engine = Engine(folder, redis_url, prefix, [write_journey(folder / "journeys")])
        commands = engine.run(b"\n".join(lines) + b"\n")
        dead = engine.dead_letters()
    summary = engine.summaries[-1]
    assert summary.events_read == len(lines)
    assert all(d["reason"] for d in dead)
    applied = applied_event_ids(redis.Redis.from_url(redis_url), prefix, engine.shards)
    assert len(applied) + len(dead) == len(lines)
    received = hellos(commands)
    for index in range(3):
        assert received.get(f"fixed-{index}") == 1
