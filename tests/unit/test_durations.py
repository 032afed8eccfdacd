"""Tests of durations, step times, local times and holdout shares."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeys_dsl.durations import (
    DurationError,
    ShareError,
    format_duration,
    parse_duration,
    parse_local_time,
    parse_share,
    parse_step_time,
)

DAY, HOUR, MINUTE, WEEK = 86_400, 3_600, 60, 604_800


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45d", 45 * DAY),
        ("12h", 12 * HOUR),
        ("30m", 30 * MINUTE),
        ("90s", 90),
        ("2w", 2 * WEEK),
        ("1d12h", DAY + 12 * HOUR),
        ("1w 2d", WEEK + 2 * DAY),
        ("1w2d3h4m5s", WEEK + 2 * DAY + 3 * HOUR + 4 * MINUTE + 5),
        ("  1 d 12 h  ", DAY + 12 * HOUR),
        ("0d", 0),
        ("0s", 0),
        ("45 days", 45 * DAY),
        ("2 weeks", 2 * WEEK),
        ("1 hour 30 minutes", HOUR + 30 * MINUTE),
        ("+3h", 3 * HOUR),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_negative_durations_need_permission() -> None:
    with pytest.raises(DurationError, match="cannot be negative"):
        parse_duration("-7d")
    assert parse_duration("-7d", allow_negative=True) == -7 * DAY
    assert parse_duration("- 1d12h", allow_negative=True) == -(DAY + 12 * HOUR)
    assert parse_duration("7d", allow_negative=True) == 7 * DAY


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("45x", "unknown unit 'x' in '45x'; use s, m, h, d or w"),
        ("45", "add a unit, e.g. '45d' for 45 days"),
        (" 7 ", "add a unit, e.g. '7d' for 7 days"),
        ("1.5d", "'1d12h'"),
        ("1,5d", "whole numbers"),
        ("0.5h", "'30m'"),
        ("1d 30", "add a unit after '30'"),
        ("3 months", "use days or weeks"),
        ("1y", "use days or weeks"),
        ("d", "unexpected 'd'"),
        ("1d-2h", "unexpected '-'"),
        ("-", "negative"),
        ("day 7", "unexpected 'd'"),
    ],
)
def test_parse_duration_errors(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert fragment in info.value.message
    assert str(info.value) == info.value.message
    assert info.value.text == text
    assert isinstance(info.value, ValueError)


def test_yaml_integers_get_the_bare_number_error() -> None:
    with pytest.raises(DurationError, match=r"add a unit, e\.g\. '45d' for 45 days"):
        parse_duration(45)
    with pytest.raises(DurationError):
        parse_duration(True)
    with pytest.raises(DurationError):
        parse_duration(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("day 7", (7 * DAY, None)),
        ("day 0", (0, None)),
        ("day 1 11:00", (DAY, (11, 0))),
        ("day 1 at 11:00", (DAY, (11, 0))),
        ("  Day 2 AT 9:30 ", (2 * DAY, (9, 30))),
        ("DAY 3", (3 * DAY, None)),
        ("36h", (36 * HOUR, None)),
        ("1d12h", (DAY + 12 * HOUR, None)),
    ],
)
def test_parse_step_time(text: str, expected: tuple[int, tuple[int, int] | None]) -> None:
    assert parse_step_time(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("day -1", "cannot be negative"),
        ("day", "expected 'day N'"),
        ("day x", "expected 'day N'"),
        ("day 1 at", "expected a time like 10:00"),
        ("day 1 25:00", "expected a time like 10:00"),
        ("day 1 at noon", "expected a time like 10:00"),
        ("36", "add a unit"),
        ("soon", "unexpected 's'"),
    ],
)
def test_parse_step_time_errors(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_step_time(text)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10:00", (10, 0)), ("9:30", (9, 30)), ("09:05", (9, 5)), ("23:59", (23, 59)),
     ("0:00", (0, 0)), (" 7:15 ", (7, 15))],
)
def test_parse_local_time(text: str, expected: tuple[int, int]) -> None:
    assert parse_local_time(text) == expected


@pytest.mark.parametrize("text", ["24:00", "9:60", "10", "", "10:0", "10:000", "ten", "-1:00",
                                  "10.30", "1:2:3"])
def test_parse_local_time_errors(text: str) -> None:
    with pytest.raises(DurationError, match="expected a time like 10:00"):
        parse_local_time(text)


def test_unquoted_yaml_time_gets_a_hint() -> None:
    # YAML 1.1 reads an unquoted 10:00 as the integer 600
    with pytest.raises(DurationError, match="quotes"):
        parse_local_time(600)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10%", 0.1), (0.1, 0.1), ("0.1", 0.1), (0, 0.0), ("0%", 0.0), ("99%", 0.99),
     (" 25 % ", 0.25), ("99.5%", 0.995), (0.5, 0.5), ("0", 0.0)],
)
def test_parse_share(value: str | float, expected: float) -> None:
    share = parse_share(value)
    assert share == pytest.approx(expected)
    assert isinstance(share, float)


@pytest.mark.parametrize("value", ["100%", 1, 1.0, 10, "150%", -0.1, "-5%", math.nan, math.inf])
def test_parse_share_out_of_range(value: str | float) -> None:
    with pytest.raises(ShareError) as info:
        parse_share(value)
    assert "holdout must be between 0% and 99%" in info.value.message
    assert info.value.value is value or info.value.value == value


def test_parse_share_hints_at_percent() -> None:
    with pytest.raises(ShareError, match="did you mean '10%'"):
        parse_share(10)


@pytest.mark.parametrize("value", ["abc", "", "%", "10 %%", "1e-2", True, None])
def test_parse_share_rejects_non_numbers(value: object) -> None:
    with pytest.raises(ShareError):
        parse_share(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(129_600, "1d12h"), (0, "0s"), (45 * DAY, "45d"), (90, "1m30s"), (HOUR, "1h"),
     (-HOUR, "-1h"), (2 * WEEK, "14d"), (DAY + 1, "1d1s")],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds), allow_negative=True) == seconds


@given(st.text(max_size=20))
def test_parse_duration_only_raises_duration_errors(text: str) -> None:
    try:
        seconds = parse_duration(text, allow_negative=True)
    except DurationError as err:
        assert err.message
    else:
        assert isinstance(seconds, int)


@pytest.mark.parametrize("text", ["45d", "12h", "1d12h", "2 weeks", "90 min", "1w 2d", "30s",
                                  "1M", "12H", "3mo", "1y", "1.5d", "d", "45", "", "7 dayz"])
def test_the_validator_and_the_json_schema_read_one_grammar(text: str) -> None:
    from journeys_dsl.durations import DURATION_PATTERN

    try:
        parse_duration(text)
        accepted = True
    except DurationError:
        accepted = False
    assert accepted == bool(re.match(DURATION_PATTERN, text))


def test_a_capital_m_is_refused_as_months_not_read_as_minutes() -> None:
    with pytest.raises(DurationError, match="months and years vary in length"):
        parse_duration("1M")
    with pytest.raises(DurationError, match="lowercase in '12H': '12h'"):
        parse_duration("12H")
    with pytest.raises(DurationError, match="lowercase in '45D': '45d'"):
        parse_duration("45D")
