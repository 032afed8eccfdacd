"""The one ISO-8601 time parser outside event validation, and local time by arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from engine.core.timeutil import (
    DAY_MS,
    iso_date_local,
    iso_to_ms,
    iso_utc,
    local_datetime,
    local_hour,
    local_ms,
    next_yearly,
    parse_iso,
    weekday_of,
    zone,
)


def test_offsets_and_z_give_the_same_instant() -> None:
    assert iso_to_ms("2025-03-03T10:00:00Z") == iso_to_ms("2025-03-03T11:00:00+01:00")
    assert iso_to_ms("2025-03-03T10:00:00.250Z") == 1_740_996_000_250


def test_a_time_without_offset_is_utc_unless_refused() -> None:
    assert iso_to_ms("2025-03-03T10:00:00") == iso_to_ms("2025-03-03T10:00:00Z")
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_iso("2025-03-03T10:00:00", naive_as_utc=False)


def test_text_that_is_no_time_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        iso_to_ms("next tuesday")


ZONES = ("Europe/Berlin", "Europe/London", "America/New_York", "Australia/Lord_Howe",
         "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "Pacific/Kiritimati",
         "Pacific/Pago_Pago", "UTC", "Nowhere/Unknown")


@pytest.mark.parametrize("zone_name", ZONES)
def test_local_time_arithmetic_agrees_with_datetime_around_every_transition(
        zone_name: str) -> None:
    """Local hours, weekdays and dates from the offset cache equal datetime's, on both
    sides of each offset change of a zone (half-hour and 45-minute zones included) and
    at random moments between 1900 and 2100."""
    tz = zone(zone_name)
    rng = random.Random(zone_name)
    moments = [rng.randrange(-2_208_988_800_000, 4_102_444_800_000) for _ in range(3000)]
    for year in range(1990, 2040):
        for month in (3, 4, 9, 10, 11):  # around the transitions of both hemispheres
            start = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
            moments.extend(start + rng.randrange(0, 31 * DAY_MS) for _ in range(20))
    transitions = [m for m in moments if local_datetime(m, zone_name).utcoffset()
                   != local_datetime(m + 3_600_000, zone_name).utcoffset()]
    for moment in transitions:  # every millisecond-exact edge within the hour after it
        low, high = moment, moment + 3_600_000
        while high - low > 1:
            middle = (low + high) // 2
            same = (local_datetime(middle, zone_name).utcoffset()
                    == local_datetime(low, zone_name).utcoffset())
            low, high = (middle, high) if same else (low, middle)
        moments.extend((low - 1, low, high, high + 1))
    for moment in moments:
        expected = datetime.fromtimestamp(moment / 1000, tz)
        assert local_hour(moment, zone_name) == expected.hour, (zone_name, moment)
        assert weekday_of(local_ms(moment, zone_name)) == expected.weekday()
        assert iso_date_local(moment, zone_name) == expected.date().isoformat()


def test_an_events_own_offset_wins_over_the_zone() -> None:
    moment = int(datetime(2025, 7, 1, 23, 30, tzinfo=UTC).timestamp() * 1000)
    assert local_hour(moment, "Europe/Berlin") == 1
    assert local_hour(moment, "Europe/Berlin", -5 * 3600) == 18
    assert local_hour(moment, None) == 23


def test_iso_utc_agrees_with_datetime() -> None:
    draw = random.Random(11)
    moments = [0, 1, 999, 60_000, DAY_MS - 1, 951_782_400_000, 4_102_444_799_999]
    moments += [draw.randrange(-2_208_988_800_000, 4_102_444_800_000) for _ in range(20_000)]
    for ts in moments:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts)
        expected = moment.isoformat(timespec="milliseconds")
        assert iso_utc(ts) == expected.replace("+00:00", "Z"), ts


def _next_yearly_by_datetime(month_day: str, after_ms: int, hour: int, minute: int,
                             offset_ms: int, tz_name: str) -> int:
    """The definition of `next_yearly`, worked out with datetime for each year."""
    month, day = (int(part) for part in month_day.split("-"))
    tz = zone(tz_name)
    year = datetime.fromtimestamp(after_ms / 1000, tz).year - 1
    for candidate_year in range(year, year + 4):
        last_day = day
        while True:
            try:
                moment = datetime(candidate_year, month, last_day, hour, minute, tzinfo=tz)
                break
            except ValueError:
                last_day -= 1
        due = int(moment.timestamp() * 1000) + offset_ms
        if due > after_ms:
            return due
    raise AssertionError("no date")


@pytest.mark.parametrize("zone_name", ZONES)
def test_next_yearly_agrees_with_datetime(zone_name: str) -> None:
    """Birthdays and anniversaries, 29 February and the days of a zone's offset changes
    included, at random times of day and offsets, from random moments."""
    rng = random.Random(f"yearly {zone_name}")
    for _ in range(3000):
        month = rng.randrange(1, 13)
        month_day = f"{month:02d}-{rng.choice((1, 28, 29, 30, 31, rng.randrange(1, 32))):02d}"
        if month_day[3:] > ("29" if month == 2 else "31"):
            continue
        after = rng.randrange(0, 4_000_000_000_000)
        if rng.random() < 0.2:  # around a new year, when the local year is not UTC's
            new_year = datetime(rng.randrange(1971, 2100), 1, 1, tzinfo=UTC)
            after = int(new_year.timestamp() * 1000) + rng.randrange(-3 * DAY_MS, 3 * DAY_MS)
        elif rng.random() < 0.3:  # on the day, around the time of day itself
            after = _next_yearly_by_datetime(month_day, after, 10, 0, 0, zone_name) \
                + rng.randrange(-7_200_000, 7_200_000)
        hour, minute = rng.choice(((10, 0), (0, 0), (2, 30), (23, 59), (rng.randrange(24), 15)))
        offset = rng.choice((0, -DAY_MS, 3 * DAY_MS, rng.randrange(-10 * DAY_MS, 10 * DAY_MS),
                             rng.randrange(-350 * DAY_MS, 350 * DAY_MS)))
        assert next_yearly(month_day, after, hour, minute, offset, zone_name) == \
            _next_yearly_by_datetime(month_day, after, hour, minute, offset, zone_name), \
            (month_day, after, hour, minute, offset)
