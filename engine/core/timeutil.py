"""Time helpers: epoch milliseconds, local time in a customer's zone, ISO formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000


def parse_iso(text: str, *, naive_as_utc: bool = True) -> datetime:
    """An ISO-8601 time (`Z` or an offset); one without an offset is UTC unless
    `naive_as_utc` is false, when it is refused. Raises ValueError for anything else."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        if not naive_as_utc:
            raise ValueError(f"no UTC offset in {text[:60]!r} (add Z or +01:00)")
        moment = moment.replace(tzinfo=UTC)
    return moment


def iso_to_ms(text: str, *, naive_as_utc: bool = True) -> int:
    """Epoch milliseconds of an ISO-8601 time (see `parse_iso`)."""
    return int(parse_iso(text, naive_as_utc=naive_as_utc).timestamp() * 1000)


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo | timezone:
    """The zone of an IANA name; UTC when the name is missing or unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return UTC


def local_datetime(ts_ms: int, tz_name: str | None, utc_offset_s: int | None = None) -> datetime:
    """The local wall-clock time of `ts_ms`: the event's own offset wins over the zone."""
    tz = fixed_offset(utc_offset_s) if utc_offset_s is not None else zone(tz_name)
    return datetime.fromtimestamp(ts_ms / 1000, tz)


_OFFSET_SPAN_MS = 900_000
"""Zone offsets are looked up once per span of 15 minutes: no zone changes its offset twice
within one."""
_OFFSETS_KEPT = 100_000
_offsets: dict[tuple[str, int], int | None] = {}
"""(zone name, span) -> the zone's UTC offset in ms throughout the span (None: it changes
within the span)."""


def _offset_at(ts_ms: int, tz: ZoneInfo | timezone) -> int:
    offset = datetime.fromtimestamp(ts_ms / 1000, tz).utcoffset()
    return 0 if offset is None else offset // timedelta(milliseconds=1)


def utc_offset_ms(ts_ms: int, tz_name: str | None) -> int:
    """The UTC offset (ms) of the zone `tz_name` at `ts_ms`; 0 for none or an unknown one.

    The same as `local_datetime(...).utcoffset()`, without a datetime for each call: the
    offset of a zone is kept per span of 15 minutes in which it does not change."""
    if not tz_name:
        return 0
    span = ts_ms // _OFFSET_SPAN_MS
    key = (tz_name, span)
    offset = _offsets.get(key, 0)
    if offset == 0 and key not in _offsets:
        tz = zone(tz_name)
        start = span * _OFFSET_SPAN_MS
        first = _offset_at(start, tz)
        offset = first if _offset_at(start + _OFFSET_SPAN_MS - 1, tz) == first else None
        if len(_offsets) >= _OFFSETS_KEPT:
            _offsets.clear()
        _offsets[key] = offset
    if offset is None:  # the offset changes within this span
        return _offset_at(ts_ms, zone(tz_name))
    return offset


def local_ms(ts_ms: int, tz_name: str | None, utc_offset_s: int | None = None) -> int:
    """`ts_ms` moved to local wall-clock time, as epoch ms counted in that time (so that
    `local_ms // DAY_MS` is the local day): the event's own offset wins over the zone."""
    if utc_offset_s is not None:
        return ts_ms + utc_offset_s * 1000
    return ts_ms + utc_offset_ms(ts_ms, tz_name)


def local_hour(ts_ms: int, tz_name: str | None, utc_offset_s: int | None = None) -> int:
    """The local hour (0-23) of `ts_ms`, as `local_datetime(...).hour`."""
    return hour_of(local_ms(ts_ms, tz_name, utc_offset_s))


def hour_of(local: int) -> int:
    """The hour (0-23) of a time from `local_ms`, as `datetime.hour`."""
    return local // 3_600_000 % 24


def weekday_of(local: int) -> int:
    """Monday 0 to Sunday 6 of a time from `local_ms`, as `datetime.weekday()`."""
    return (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday


@lru_cache(maxsize=256)
def fixed_offset(seconds: int) -> timezone:
    """The fixed-offset zone of an event's own UTC offset."""
    return timezone(timedelta(seconds=seconds))


def at_local_time(ts_ms: int, hour: int, minute: int, tz_name: str | None) -> int:
    """Epoch ms of hour:minute on the local calendar day that contains `ts_ms`."""
    day = datetime.fromtimestamp(ts_ms / 1000, zone(tz_name))
    moment = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return int(moment.timestamp() * 1000)


@lru_cache(maxsize=16_384)
def wall_clock_ms(local: int, tz_name: str | None) -> int:
    """Epoch ms of a local wall-clock time (counted as `local_ms` counts it) in the zone:
    a time that occurs twice is the first, and one skipped by a change to summer time
    reads with the offset before the change, as `datetime` does (fold 0)."""
    wall = datetime(1970, 1, 1) + timedelta(milliseconds=local)
    return int(wall.replace(tzinfo=zone(tz_name)).timestamp() * 1000)


def utc_day_start(ts_ms: int) -> int:
    """Midnight UTC at or before `ts_ms` (epoch ms)."""
    return ts_ms - ts_ms % DAY_MS


def iso_utc(ts_ms: int) -> str:
    """ISO-8601 in UTC with millisecond precision and a Z suffix."""
    minute, rest = divmod(ts_ms, 60_000)
    return _iso_minute(minute) + _TWO_DIGITS[rest // 1000] + "." + _THREE_DIGITS[rest % 1000] + "Z"


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))
"""Zero-padded numbers by value: a format specification costs several times a lookup."""


@lru_cache(maxsize=4096)
def _iso_minute(minute: int) -> str:
    """YYYY-MM-DDTHH:MM: of a minute counted from the epoch."""
    day, rest = divmod(minute, 1440)
    return f"{_iso_day(day)}T{_TWO_DIGITS[rest // 60]}:{_TWO_DIGITS[rest % 60]}:"


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    """YYYY-MM-DD of a day counted from 1970-01-01."""
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def iso_date_local(ts_ms: int, tz_name: str | None) -> str:
    """The local calendar date of `ts_ms` as YYYY-MM-DD."""
    return _iso_day(local_ms(ts_ms, tz_name) // DAY_MS)


def next_yearly(month_day: str, after_ms: int, hour: int, minute: int, offset_ms: int,
                tz_name: str | None) -> int:
    """The first moment after `after_ms` that is MM-DD at hour:minute local, shifted by offset
    (an offset of less than a year either way).

    29 February falls on 28 February in years without it.
    """
    month, day = _month_and_day(month_day)
    year = _year_of_day(after_ms // DAY_MS)  # in UTC; the local year is within one of it
    clock = hour * 3_600_000 + minute * 60_000
    for candidate_year in range(year - 2, year + 4):
        local = _day_number(candidate_year, month, day) * DAY_MS + clock
        if local + offset_ms + _ZONE_OFFSET_BOUND_MS <= after_ms:
            continue  # at or before `after_ms` in any zone: no conversion needed
        due = wall_clock_ms(local, tz_name) + offset_ms
        if due > after_ms:
            return due
    raise ValueError(f"no yearly date for {month_day}")  # unreachable for valid dates


_ZONE_OFFSET_BOUND_MS = 2 * DAY_MS
"""More than any zone's distance from UTC (at most 26 hours): a local time this far before
a moment is before it in every zone."""


@lru_cache(maxsize=4096)
def _year_of_day(day: int) -> int:
    """The year of a day counted from 1970-01-01."""
    return date.fromordinal(_EPOCH_ORDINAL + day).year


@lru_cache(maxsize=4096)
def _day_number(year: int, month: int, day: int) -> int:
    """The day (counted from 1970-01-01) of the date; a day past the month's end falls back
    to its last day (29 February on the 28th)."""
    while True:
        try:
            return date(year, month, day).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            day -= 1


@lru_cache(maxsize=1024)
def _month_and_day(month_day: str) -> tuple[int, int]:
    month, day = month_day.split("-")
    return int(month), int(day)


def iso_week(ts_ms: int) -> str:
    """The ISO week of `ts_ms` in UTC, as 2025-W03."""
    return _iso_week_of_day(ts_ms // DAY_MS)


@lru_cache(maxsize=4096)
def _iso_week_of_day(day: int) -> str:
    year, week, _ = date.fromordinal(_EPOCH_ORDINAL + day).isocalendar()
    return f"{year}-W{week:02d}"
