"""Broadcast entries: the YAML, its problems at FILE:LINE:COL, occurrences, rates and zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.core.broadcast_times import local_to_utc, walk_day
from engine.core.catalog import Catalog
from engine.flow.broadcasts import BroadcastWalker, rate_interval_ms, take_place
from journeys_dsl.broadcasts import (
    BroadcastFormatError,
    add_months,
    describe,
    occurrences,
    parse_local_date,
    parse_local_datetime,
    parse_rate,
)
from journeys_dsl.errors import JourneyValidationError, Problem
from journeys_dsl.loader import _check_text, load_journey_text
from journeys_dsl.plan import BroadcastEntry
from journeys_dsl.schema import journey_json_schema

FILE = "b.yaml"
STEPS = """\
steps:
  - id: invite
    actions:
      - send: email
        template: invite
"""


def journey(entry: str) -> str:
    return f"journey: b\nversion: 1\nentry:\n{entry}{STEPS}"


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE)
    return list(caught.value.problems)


def assert_problem(text: str, line: int, col: int, fragment: str, path: str) -> None:
    found = [p for p in problems_of(text) if fragment in p.message]
    assert len(found) == 1, "\n".join(str(p) for p in problems_of(text))
    assert str(found[0]).startswith(f"{FILE}:{line}:{col}: "), str(found[0])
    assert found[0].path == path


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_a_broadcast_compiles() -> None:
    plan = load_journey_text(journey(
        '  broadcast:\n    at: "2030-12-20 10:00"\n'
        "    audience: \"'vip' in customer.segments\"\n"
        "    every: month\n    until: \"2031-03-31\"\n    rate: 200/min\n"), FILE)
    entry = plan.entry
    assert isinstance(entry, BroadcastEntry)
    assert entry.start_local_ms == ms("2030-12-20 10:00")
    assert entry.every == "month" and entry.rate_per_minute == 200
    assert entry.condition is not None and entry.condition.source.startswith("'vip'")
    assert occurrences(entry) == [ms("2030-12-20 10:00"), ms("2031-01-20 10:00"),
                                  ms("2031-02-20 10:00"), ms("2031-03-20 10:00")]
    assert describe(entry) == ("a broadcast at 2030-12-20 10:00 local time, every month "
                               "until 2031-03-31, 200 entries a minute per shard")


def test_a_bad_date_and_time_is_reported_where_it_is_written() -> None:
    assert_problem(journey('  broadcast:\n    at: "2030-02-30 10:00"\n'), 5, 9,
                   "'2030-02-30 10:00' is not a real date and time", "entry.broadcast.at")
    assert_problem(journey('  broadcast:\n    at: "20 December 10:00"\n'), 5, 9,
                   'expected a local date and time like "2026-12-20 10:00"',
                   "entry.broadcast.at")
    assert_problem(journey("  broadcast: {audience: 'customer.visit_count > 1'}\n"), 4, 14,
                   "missing required key 'at' in entry.broadcast", "entry.broadcast.at")


def test_repeat_until_and_rate_problems() -> None:
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n    every: fortnight\n'),
                   6, 12, "unknown repeat 'fortnight'; use one of: week, month",
                   "entry.broadcast.every")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n    until: "2031-01-01"\n'),
                   6, 5, "'until' only applies to a repeated broadcast", "entry.broadcast.until")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n    every: week\n'
                           '    until: "2030-12-01"\n'),
                   7, 12, "'until' is before the first broadcast", "entry.broadcast.until")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n    rate: 200/mn\n'),
                   6, 11, "unknown unit 'mn' in rate '200/mn'; did you mean 'min'?",
                   "entry.broadcast.rate")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n    rate: fast\n'),
                   6, 11, "expected a rate like '200/min'", "entry.broadcast.rate")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n    raet: 1/s\n'),
                   6, 5, "unknown key 'raet' in entry.broadcast; did you mean 'rate'?",
                   "entry.broadcast.raet")


def test_the_audience_is_checked_like_a_condition() -> None:
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n'
                           '    audience: "customer.vist_count > 2"\n'),
                   6, 25, "unknown field 'vist_count' of the customer; did you mean "
                          "'visit_count'?", "entry.broadcast.audience")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n'
                           '    audience: "event.stars == 5"\n'),
                   6, 16, "a broadcast has no triggering event", "entry.broadcast.audience")
    assert_problem(journey('  broadcast:\n    at: "2030-12-20 10:00"\n  when: "true"\n'),
                   6, 3, "a broadcast entry takes its condition as 'broadcast: {audience: ...}'",
                   "entry.when")


def test_a_past_broadcast_is_a_warning() -> None:
    result = _check_text(journey('  broadcast:\n    at: "2020-12-20 10:00"\n'), FILE)
    assert result.plan is not None
    assert [str(w) for w in result.warnings] == [
        "b.yaml:5:9: warning: the broadcast is in the past: a live run sends nothing; a "
        "backtest over that time shows what it would have done (at entry.broadcast.at)"]
    future = _check_text(journey('  broadcast:\n    at: "2099-12-20 10:00"\n'), FILE)
    assert future.warnings == ()


def test_formats() -> None:
    assert parse_local_datetime("2026-12-20T09:05") == ms("2026-12-20 09:05")
    assert parse_local_date("2027-03-31") == ms("2027-04-01 00:00") - 1
    assert parse_rate("200/min") == 200
    assert parse_rate("5/s") == 300
    assert parse_rate("600 / hour") == 10
    with pytest.raises(BroadcastFormatError, match="above 0"):
        parse_rate("0/min")


def test_months_fall_on_their_last_day() -> None:
    assert add_months(ms("2027-01-31 10:00"), 1) == ms("2027-02-28 10:00")
    assert add_months(ms("2027-01-31 10:00"), 3) == ms("2027-04-30 10:00")
    assert add_months(ms("2027-11-30 10:00"), 3) == ms("2028-02-29 10:00")
    weekly = BroadcastEntry(ms("2027-01-01 10:00"), "week", ms("2027-01-22 10:00"), None, None)
    assert len(occurrences(weekly)) == 4


def test_repeats_end_with_the_last_year_a_date_can_have() -> None:
    plan = load_journey_text(journey(
        '  broadcast:\n    at: "9999-10-15 10:00"\n    every: month\nre_entry: always\n'),
        FILE)
    assert isinstance(plan.entry, BroadcastEntry)
    assert occurrences(plan.entry) == [ms("9999-10-15 10:00"), ms("9999-11-15 10:00"),
                                       ms("9999-12-15 10:00")]
    weekly = BroadcastEntry(ms("9999-12-20 10:00"), "week", None, None, None)
    assert occurrences(weekly) == [ms("9999-12-20 10:00"), ms("9999-12-27 10:00")]


def test_local_times_and_the_walk_day() -> None:
    local = ms("2026-12-20 10:00")
    assert local_to_utc(local, "Europe/Berlin") == ms("2026-12-20 09:00")
    assert local_to_utc(local, "America/New_York") == ms("2026-12-20 15:00")
    assert local_to_utc(local, None) == local  # no zone: UTC
    assert local_to_utc(local, "Mars/Olympus") == local
    # the walk is done at the UTC midnight before it is 10:00 in UTC+14
    assert walk_day(local) == ms("2026-12-19 00:00")
    assert walk_day(ms("2026-12-20 15:00")) == ms("2026-12-20 00:00")


def test_only_catalogs_with_broadcasts_get_a_walker() -> None:
    plain = load_journey_text("journey: p\nversion: 1\nentry: {event: visit}\n" + STEPS, FILE)
    assert BroadcastWalker.of(Catalog([plain])) is None
    broadcast = load_journey_text(journey('  broadcast:\n    at: "2099-12-20 10:00"\n'), FILE)
    walker = BroadcastWalker.of(Catalog([plain, broadcast]))
    assert walker is not None and [p.journey_id for p in walker.plans] == ["b"]


def test_the_schema_describes_the_broadcast_entry() -> None:
    kinds = journey_json_schema()["properties"]["entry"]["oneOf"]
    broadcast = next(k for k in kinds if "broadcast" in k["properties"])
    assert broadcast["properties"]["broadcast"]["required"] == ["at"]
    assert set(broadcast["properties"]["broadcast"]["properties"]) == {
        "at", "audience", "every", "until", "rate"}


def test_a_repeated_broadcast_without_re_entry_is_a_warning() -> None:
    text = journey('  broadcast:\n    at: "2099-12-20 10:00"\n    every: week\n')
    result = _check_text(text, FILE)
    assert result.plan is not None
    assert [str(w) for w in result.warnings] == [
        "b.yaml:6:12: warning: a broadcast repeated every week reaches each customer once "
        "with re_entry: never (the default); add 're_entry: always' to send every time "
        "(at entry.broadcast.every)"]
    again = _check_text(text.replace("steps:", "re_entry: always\nsteps:"), FILE)
    assert again.warnings == ()


def test_places_of_a_rate_are_taken_in_order_and_shared() -> None:
    taken: list[list[int]] = []
    assert [take_place(taken, 10) for _ in range(3)] == [10, 11, 12]
    assert take_place(taken, 20) == 20
    assert take_place(taken, 11) == 13  # the next free place after the run
    assert taken == [[10, 14], [20, 21]]
    for _ in range(6):
        take_place(taken, 14)
    assert taken == [[10, 21]]  # the runs met: one run
    assert take_place(taken, 5) == 5 and take_place(taken, 9) == 9
    assert taken == [[5, 6], [9, 21]]
    assert rate_interval_ms(200) == 300 and rate_interval_ms(1 / 60) == 3_600_000
