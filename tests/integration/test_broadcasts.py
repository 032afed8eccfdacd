"""Broadcast journeys through the real dataflow: the audience at each customer's local time,
holdout, consent, caps, the sending rate, recurrence, and the walk's durable cursor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from harness import Engine, at, commands_by_id, event, kill_when, visit

from engine.app.cli import main
from engine.app.generator import ChainConfig, write_jsonl
from engine.core.runtime import stable_fraction
from engine.flow.broadcasts import SLICE_VARIABLE
from engine.flow.runner import RunOptions, run_on
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

VIP_BROADCAST = """\
journey: vip_evening
version: 1
entry:
  broadcast:
    at: "2025-03-10 10:00"
    audience: "'vip' in customer.segments"
{extra}holdout: {holdout}
steps:
  - id: invite
    actions:
      - send: email
        template: vip_evening
"""

ZONES = {"ber": "Europe/Berlin", "nyc": "America/New_York", "tyo": "Asia/Tokyo"}


def make_engine(tmp_path: Path, redis_url: str, key_prefix: str, text: str,
                policies: str | None = None, shards: int = 4) -> Engine:
    folder = tmp_path / "journeys"
    folder.mkdir(exist_ok=True)
    (folder / "broadcast.yaml").write_text(text)
    engine = Engine(tmp_path, redis_url, key_prefix, [str(folder)], shards=shards)
    if policies is not None:
        (tmp_path / "policies.yaml").write_text(policies)
        engine.policies = str(tmp_path / "policies.yaml")
    return engine


def customer(name: str, zone: str | None, amount: float, day: float = 0,
             **profile: Any) -> list[dict[str, Any]]:
    fields: dict[str, Any] = {"email": f"{name}@example.com", **profile}
    if zone is not None:
        fields["timezone"] = zone
    return [event("profile", name, at(day, 9), **fields), visit(name, at(day), amount=amount)]


def population() -> list[dict[str, Any]]:
    """Two VIPs in each of three zones and one without a zone, among 21 low spenders."""
    events: list[dict[str, Any]] = []
    for short, zone in ZONES.items():
        for n in range(2):
            events += customer(f"vip_{short}_{n}", zone, 900 + 10 * n)
    events += customer("vip_utc", None, 950)
    for n in range(21):
        events += customer(f"low_{n:02d}", "Europe/Berlin", 20)
    return sorted(events, key=lambda e: e["ts"])


def test_a_broadcast_reaches_exactly_the_audience_at_local_time(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.format(extra="", holdout="0%"))
    # the clock passes the broadcast time in every zone with a later event
    commands = engine.run([*population(), visit("low_00", at(9, 12), amount=20)])
    send_at = {c["customer_id"]: c["send_at"] for c in commands}
    assert send_at == {
        "vip_ber_0": "2025-03-10T09:00:00.000Z", "vip_ber_1": "2025-03-10T09:00:00.000Z",
        "vip_nyc_0": "2025-03-10T14:00:00.000Z", "vip_nyc_1": "2025-03-10T14:00:00.000Z",
        "vip_tyo_0": "2025-03-10T01:00:00.000Z", "vip_tyo_1": "2025-03-10T01:00:00.000Z",
        "vip_utc": "2025-03-10T10:00:00.000Z",  # no timezone in the profile: UTC
    }
    assert {c["journey"] for c in commands} == {"vip_evening"}
    assert engine.stats()["vip_evening@1|entered"] == 7


WELCOME = """\
journey: welcome
version: 1
entry:
  event: rating
steps:
  - id: thanks
    actions:
      - send: email
        template: thanks
"""


def test_holdout_consent_caps_and_quiet_hours_apply(tmp_path: Path, redis_url: str,
                                                    key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.format(extra="", holdout="30%"),
                         'quiet_hours: {from: "21:00", to: "10:30"}\n'
                         "frequency_cap: {max: 1, per: 7d}\n")
    (Path(engine.journeys[0]) / "welcome.yaml").write_text(WELCOME)
    events = population()
    events.append(event("profile", "vip_nyc_1", at(2), consents={"email": False}))
    events.append(event("rating", "vip_utc", at(6), stars=5))  # a message two days before
    commands = engine.run([*sorted(events, key=lambda e: e["ts"]),
                           visit("low_00", at(9, 12), amount=20)])
    vips = {"vip_ber_0", "vip_ber_1", "vip_nyc_0", "vip_nyc_1", "vip_tyo_0", "vip_tyo_1",
            "vip_utc"}
    held = {c for c in vips if stable_fraction(c, "vip_evening") < 0.3}
    assert held and held != vips
    sent = {c["customer_id"]: c["send_at"] for c in commands if c["journey"] == "vip_evening"}
    expected = vips - held - {"vip_nyc_1", "vip_utc"}  # no consent; capped
    assert set(sent) == expected
    # 10:00 local is quiet until 10:30
    assert all(value.endswith(":30:00.000Z") for value in sent.values())
    stats = engine.stats()
    assert stats["vip_evening@1|entered"] + stats["vip_evening@1|entered_holdout"] == 7
    assert stats["vip_evening@1|entered_holdout"] == len(held)
    if "vip_nyc_1" not in held:
        assert stats["vip_evening@1|no_consent:invite:email"] == 1
    if "vip_utc" not in held:
        assert stats["vip_evening@1|capped:invite:email"] == 1


def test_the_rate_spaces_entries_on_a_shard_across_zones(tmp_path: Path, redis_url: str,
                                                        key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.replace("'vip' in customer.segments",
                                               "customer.total_spend >= 20")
                         .format(extra="    rate: 2/min\n", holdout="0%"), shards=1)
    commands = engine.run([*population(), visit("low_00", at(9, 12), amount=20)])
    sent = sorted((c["send_at"], c["customer_id"]) for c in commands)
    # 2 a minute: one place every 30 s, taken in customer id order from each local time
    berlin = [f"low_{n:02d}" for n in range(21)] + ["vip_ber_0", "vip_ber_1"]
    expected = [(f"2025-03-10T09:{n // 2:02d}:{30 * (n % 2):02d}.000Z", cid)
                for n, cid in enumerate(berlin)]
    expected += [("2025-03-10T01:00:00.000Z", "vip_tyo_0"),
                 ("2025-03-10T01:00:30.000Z", "vip_tyo_1"),
                 ("2025-03-10T10:00:00.000Z", "vip_utc"),
                 ("2025-03-10T14:00:00.000Z", "vip_nyc_0"),
                 ("2025-03-10T14:00:30.000Z", "vip_nyc_1")]
    assert sent == sorted(expected)


WEEKLY = """\
journey: weekly_news
version: 1
entry:
  broadcast:
    at: "2025-02-01 10:00"
    every: week
    until: "2025-02-20"
    audience: "customer.visit_count >= 1"
re_entry: always
holdout: 10%
steps:
  - id: news
    actions:
      - send: email
        template: weekly_news
"""


def _run_command(events: Path, journeys: Path, commands: Path, redis_url: str,
                 prefix: str) -> list[str]:
    return [sys.executable, "-m", "engine", "run", "--journeys", str(journeys),
            "--events", str(events), "--commands", str(commands),
            "--dead-letter", str(commands) + ".dead", "--redis", redis_url,
            "--prefix", prefix, "--shards", "4"]


def _walk_positions(client: redis.Redis, prefix: str) -> tuple[tuple[int, str, str], ...]:
    """Each shard's walk of the weekly broadcast: (occurrence, phase, last customer)."""
    out = []
    for shard in range(4):
        raw = client.hget(f"{{{prefix}:s{shard}}}:bc", "weekly_news")
        if raw:
            doc = orjson.loads(raw)
            out.append((doc["at"], doc["phase"], doc["after"]))
    return tuple(out)


def test_kill_9_during_the_walk_sends_each_occurrence_once(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=5, customers=1500, days=60), events)
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "weekly.yaml").write_text(WEEKLY)
    env = {**os.environ, SLICE_VARIABLE: "40"}
    clean_path = tmp_path / "clean.jsonl"
    subprocess.run(_run_command(events, journeys, clean_path, redis_url, f"{key_prefix}clean"),
                   check=True, capture_output=True, timeout=300, env=env)
    clean = {c["command_id"]: c for c in _read(clean_path)}
    assert len({c["send_at"][:10] for c in clean.values()}) >= 3  # three occurrences

    client = redis.Redis.from_url(redis_url)
    crash_prefix = f"{key_prefix}crash"
    crashed_path = tmp_path / "crashed.jsonl"
    crashed_path.touch()
    seen: set[tuple[tuple[int, str, str], ...]] = set()
    killed_mid_walk = 0

    def mid_walk_at_a_new_place() -> bool:
        walks = _walk_positions(client, crash_prefix)
        if any(phase == "walk" and after for _, phase, after in walks) and walks not in seen:
            seen.add(walks)
            return True
        return False

    for _ in range(8):
        killed_mid_walk += kill_when(
            _run_command(events, journeys, crashed_path, redis_url, crash_prefix),
            mid_walk_at_a_new_place, poll_s=0.002, env=env)
    subprocess.run(_run_command(events, journeys, crashed_path, redis_url, crash_prefix),
                   check=True, capture_output=True, timeout=300, env=env)
    client.close()
    assert killed_mid_walk >= 3, f"only {killed_mid_walk} kills landed during a walk"
    by_id = commands_by_id(_read(crashed_path))
    assert by_id == clean
    per_occurrence = Counter((c["customer_id"], c["send_at"][:10]) for c in by_id.values())
    assert max(per_occurrence.values()) == 1


def _read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize(("batch_lines", "shards"), [(1, 1), (7, 3), (5000, 8)])
def test_batch_size_and_shard_count_change_nothing(
        batch_lines: int, shards: int, tmp_path: Path, redis_url: str,
        key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=8, customers=300, days=50), events)
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "weekly.yaml").write_text(WEEKLY)
    runs = []
    for name, extra in (("ref", ["--shards", "4"]),
                        ("other", ["--shards", str(shards), "--batch-lines", str(batch_lines)])):
        commands = tmp_path / f"{name}.jsonl"
        assert main(["run", "--journeys", str(journeys), "--events", str(events),
                     "--commands", str(commands), "--dead-letter", str(commands) + ".dead",
                     "--redis", redis_url, "--prefix", f"{key_prefix}{name}", *extra]) == 0
        runs.append(sorted(commands.read_bytes().splitlines()))
    assert len(runs[0]) > 100
    assert runs[0] == runs[1]


def test_a_customer_first_seen_after_the_walk_is_reached_until_their_time(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.replace("'vip' in customer.segments",
                                               "customer.visit_count >= 1")
                         .format(extra="", holdout="0%"))
    commands = engine.run([
        *customer("early", "Europe/Berlin", 30),
        # after the walk (2025-03-09 00:00 UTC), before 10:00 in New York
        event("profile", "late_nyc", "2025-03-10T08:00:00+00:00", email="l@example.com",
              timezone="America/New_York"),
        visit("late_nyc", "2025-03-10T08:05:00+00:00"),
        # after 10:00 in Berlin: too late for this broadcast
        event("profile", "late_ber", "2025-03-10T09:30:00+00:00", email="b@example.com",
              timezone="Europe/Berlin"),
        visit("late_ber", "2025-03-10T09:35:00+00:00"),
        visit("early", at(12), amount=30),
    ])
    assert sorted((c["customer_id"], c["send_at"]) for c in commands) == [
        ("early", "2025-03-10T09:00:00.000Z"), ("late_nyc", "2025-03-10T14:00:00.000Z")]


def test_on_the_wall_clock_a_broadcast_goes_out_at_its_minute(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """The customer is known before the broadcast is loaded: the shard walks them at its
    first round and the wall clock fires their timer at the minute."""
    now = time.time()
    minute = (int(now) // 60 + 1) * 60
    if minute - now < 4:
        minute += 60
    local = datetime.fromtimestamp(minute, UTC).strftime("%Y-%m-%d %H:%M")
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "news.yaml").write_text(
        f'journey: news\nversion: 1\nentry:\n  broadcast:\n    at: "{local}"\n'
        "steps:\n  - id: hello\n    actions: [{send: push, template: hello}]\n")
    events_path = tmp_path / "events.jsonl"
    events_path.write_bytes(orjson.dumps(
        {"event_id": "w-1", "customer_id": "ann", "type": "visit", "ts": int(now * 1000),
         "venue_id": "v1", "amount": 10}) + b"\n")

    def run(number: int, journeys: list[str], idle_s: float) -> list[dict[str, Any]]:
        commands = tmp_path / f"commands-{number}.jsonl"
        options = RunOptions(
            journeys=journeys, events=str(events_path), commands=str(commands),
            dead_letter=str(tmp_path / f"dead-{number}.jsonl"), redis_url=redis_url,
            prefix=key_prefix, shards=2, source_id="wall", clock="wall", tail=True,
            tick_s=0.1, idle_exit_s=idle_s)
        run_on(redis_url, options, load_journeys(journeys) if journeys else [])
        return _read(commands) if commands.exists() else []

    assert run(1, [], 0.5) == []  # the customer is known; no broadcast yet
    sent = run(2, [str(folder)], minute - time.time() + 2.5)
    assert [(c["customer_id"], c["send_at"]) for c in sent] == [
        ("ann", datetime.fromtimestamp(minute, UTC).strftime("%Y-%m-%dT%H:%M:00.000Z"))]


def test_with_a_rate_the_batch_size_changes_nothing(tmp_path: Path, redis_url: str,
                                                    key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=9, customers=300, days=50), events)
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "weekly.yaml").write_text(
        WEEKLY.replace("    audience:", "    rate: 3/min\n    audience:"))
    runs = []
    for batch_lines in ("1", "5000"):
        commands = tmp_path / f"{batch_lines}.jsonl"
        assert main(["run", "--journeys", str(journeys), "--events", str(events),
                     "--commands", str(commands), "--dead-letter", str(commands) + ".dead",
                     "--redis", redis_url, "--prefix", f"{key_prefix}{batch_lines}",
                     "--shards", "3", "--batch-lines", batch_lines]) == 0
        runs.append(sorted(commands.read_bytes().splitlines()))
    assert runs[0] == runs[1]
    send_minutes = Counter(orjson.loads(line)["send_at"][:16] for line in runs[0])
    assert len(runs[0]) > 100 and len(send_minutes) > len(runs[0]) / 9
    # 3 a minute per shard; customers who joined the audience, or were first seen, after
    # their shard read its customers go out at their own time, outside the rate
    excess = sum(max(0, count - 3 * 3) for count in send_minutes.values())
    assert excess <= len(runs[0]) // 100


def test_a_customer_first_seen_by_an_alias_event_after_the_walk_is_reached(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """An alias event can be the first event of its survivor: the survivor (and the
    identifiers it links, never seen either) is a customer first seen after the walk."""
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.replace("'vip' in customer.segments",
                                               "customer.visit_count >= 1")
                         .format(extra="", holdout="0%"))
    commands = engine.run([
        *customer("early", "Europe/Berlin", 30),
        event("alias", "card-9", "2025-03-10T07:00:00+00:00",
              identifiers=[{"kind": "phone", "value": "+4930999"}]),
        event("profile", "+4930999", "2025-03-10T07:02:00+00:00", email="c@example.com"),
        visit("+4930999", "2025-03-10T07:05:00+00:00"),
        visit("early", at(12), amount=30),
    ])
    assert engine.dead_letters() == []
    assert sorted((c["customer_id"], c["send_at"]) for c in commands) == [
        ("card-9", "2025-03-10T10:00:00.000Z"), ("early", "2025-03-10T09:00:00.000Z")]


def test_a_customer_first_seen_by_a_late_event_after_the_walk_is_reached(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """A first event that arrives after the walk with an event time before it (behind the
    stream's clock) is applied after the walk: its customer is armed there."""
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.replace("'vip' in customer.segments",
                                               "customer.visit_count >= 1")
                         .format(extra="", holdout="0%"))
    commands = engine.run([
        *customer("early", "Europe/Berlin", 30),
        visit("early", "2025-03-09T00:10:00+00:00", amount=30),  # the clock passes the walk
        event("profile", "late", "2025-03-08T23:50:00+00:00", email="l@example.com",
              timezone="Europe/Berlin"),
        visit("late", "2025-03-08T23:55:00+00:00"),
        visit("early", at(12), amount=30),
    ])
    assert sorted((c["customer_id"], c["send_at"]) for c in commands) == [
        ("early", "2025-03-10T09:00:00.000Z"), ("late", "2025-03-10T09:00:00.000Z")]
