"""Segment triggers and condition exits driven through the real dataflow, with the shipped
segments file (vip: the top quarter by spend; sleeping: no visit for more than 30 days)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Engine, at, sends, visit

pytestmark = pytest.mark.integration

VIP_WELCOME = """\
journey: vip_welcome
version: 1
entry:
  segment: {enters: vip}
steps:
  - id: welcome
    actions:
      - send: email
        template: vip_welcome
"""

FELL_ASLEEP = """\
journey: fell_asleep
version: 1
entry:
  segment: {enters: sleeping}
re_entry: always
steps:
  - id: miss_you
    actions:
      - send: email
        template: miss_you
"""

WELCOME_SERIES = """\
journey: welcome_series
version: 1
entry:
  event: visit
  when: "customer.visit_count == 1"
exit:
  - when: "customer.visits_30d >= 2"
    reason: came_back
  - when: "customer.segment == 'sleeping'"
    reason: fell_asleep
steps:
  - id: hello
    actions:
      - send: email
        template: hello
  - id: follow_up
    at: day 40
    actions:
      - send: email
        template: follow_up
"""


def engine_for(tmp_path: Path, redis_url: str, key_prefix: str, *journeys: str) -> Engine:
    folder = tmp_path / "journeys"
    folder.mkdir()
    for number, text in enumerate(journeys):
        (folder / f"{number}.yaml").write_text(text)
    return Engine(tmp_path, redis_url, key_prefix, [str(folder)], addresses=True)


def test_a_customer_who_becomes_vip_through_a_visit_enters(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = engine_for(tmp_path, redis_url, key_prefix, VIP_WELCOME)
    chain = [visit(f"r{i}", at(-3, 19), amount=20.0 + i) for i in range(8)]
    first = engine.run([*chain, visit("ann", at(-2, 12), amount=15.0),
                        visit("bob", at(-2, 13), amount=15.0)])
    assert sends(first, "ann") == []  # at the bottom of the chain's spend
    # the chain's spend is read as of the start of the day: the top quarter of the first
    # day's customers become VIPs when the next day starts, with no event of theirs
    assert sorted((c["customer_id"], c["send_at"]) for c in first) == [
        (f"r{i}", "2025-03-01T00:00:00.000Z") for i in (5, 6, 7)]
    later = engine.run([visit("ann", at(0, 12), amount=300.0),  # now the top spender
                        visit("bob", at(0, 13), amount=5.0)])
    assert sends(later, "ann") == [("welcome", 0)]
    assert sends(later, "bob") == []
    assert engine.stats()["vip_welcome@1|entered"] == 4


def test_a_customer_who_falls_asleep_enters_on_the_clock(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = engine_for(tmp_path, redis_url, key_prefix, FELL_ASLEEP)
    first = engine.run([visit("ann", at(0, 12)), visit("bob", at(0, 12)),
                        visit("bob", at(20, 12))])
    assert first == []
    # no event of ann's or bob's: another customer's later events move the clock
    later = engine.run([visit("bystander", at(45, 12), amount=1.0, items=[])])
    assert sends(later, "ann") == [("miss_you", 30)]  # 30 days after the last visit
    assert sends(later, "bob") == []  # asleep only on day 50
    assert [c["send_at"] for c in later if c["customer_id"] == "ann"] == [
        "2025-04-02T11:00:00.001Z"]
    assert engine.dead_letters() == []


def test_condition_exits_end_enrollments_after_an_event_and_on_the_clock(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = engine_for(tmp_path, redis_url, key_prefix, WELCOME_SERIES)
    commands = engine.run([
        visit("ann", at(0, 12)), visit("ann", at(5, 12)),  # back within 30 days
        visit("bob", at(0, 12)),                             # never back: asleep on day 30
        visit("bystander", at(60, 12), amount=1.0, items=[]),
    ])
    assert sends(commands, "ann") == [("hello", 0)]
    assert sends(commands, "bob") == [("hello", 0)]  # no follow-up on day 40
    stats = engine.stats()
    assert stats["welcome_series@1|exit:came_back"] == 1
    assert stats["welcome_series@1|exit:fell_asleep"] == 1
    assert stats["welcome_series@1|entered"] == 3  # the bystander too, who stays in


def test_the_same_events_give_the_same_commands_whatever_the_shards(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    events = [visit(f"c{i}", at(i % 5, 10 + i % 8), amount=10.0 + 7 * i) for i in range(24)]
    events += [visit(f"c{i}", at(8 + i % 9, 12), amount=30.0) for i in range(0, 24, 3)]
    events.append(visit("bystander", at(70, 12), amount=1.0, items=[]))
    runs = []
    for shards in (1, 3):
        workdir = tmp_path / f"shards-{shards}"
        workdir.mkdir()
        engine = engine_for(workdir, redis_url, f"{key_prefix}-{shards}", VIP_WELCOME,
                            FELL_ASLEEP, WELCOME_SERIES)
        engine.shards = shards
        commands = engine.run(events)
        runs.append(sorted((c["command_id"], c["send_at"]) for c in commands))
    assert runs[0] == runs[1]
    assert len(runs[0]) > 24  # welcomes, VIP welcomes and miss-you messages
