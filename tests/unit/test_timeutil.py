"""The one ISO-8601 time parser outside event validation, and local time by arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from engine.core.timeutil import (
    DAY_MS,
    iso_date_local,
    iso_to_ms,
    local_datetime,
    local_hour,
    local_ms,
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
         "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "UTC", "Nowhere/Unknown")


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
