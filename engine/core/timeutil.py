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


@lru_cache(maxsize=256)
def fixed_offset(seconds: int) -> timezone:
    """The fixed-offset zone of an event's own UTC offset."""
    return timezone(timedelta(seconds=seconds))


def at_local_time(ts_ms: int, hour: int, minute: int, tz_name: str | None) -> int:
    """Epoch ms of hour:minute on the local calendar day that contains `ts_ms`."""
    day = datetime.fromtimestamp(ts_ms / 1000, zone(tz_name))
    moment = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return int(moment.timestamp() * 1000)


def utc_day_start(ts_ms: int) -> int:
    """Midnight UTC at or before `ts_ms` (epoch ms)."""
    return ts_ms - ts_ms % DAY_MS


def iso_utc(ts_ms: int) -> str:
    """ISO-8601 in UTC with millisecond precision and a Z suffix."""
    day, rest = divmod(ts_ms, DAY_MS)
    hour, rest = divmod(rest, 3_600_000)
    minute, rest = divmod(rest, 60_000)
    second, millis = divmod(rest, 1000)
    return f"{_iso_day(day)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    """YYYY-MM-DD of a day counted from 1970-01-01."""
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def iso_date_local(ts_ms: int, tz_name: str | None) -> str:
    """The local calendar date of `ts_ms` as YYYY-MM-DD."""
    return datetime.fromtimestamp(ts_ms / 1000, zone(tz_name)).date().isoformat()


def next_yearly(month_day: str, after_ms: int, hour: int, minute: int, offset_ms: int,
                tz_name: str | None) -> int:
    """The first moment after `after_ms` that is MM-DD at hour:minute local, shifted by offset.

    29 February falls on 28 February in years without it.
    """
    month, day = (int(part) for part in month_day.split("-"))
    tz = zone(tz_name)
    year = datetime.fromtimestamp(after_ms / 1000, tz).year - 1
    for candidate_year in range(year, year + 4):
        actual_day = day
        while True:
            try:
                moment = datetime(candidate_year, month, actual_day, hour, minute, tzinfo=tz)
                break
            except ValueError:
                actual_day -= 1
        due = int(moment.timestamp() * 1000) + offset_ms
        if due > after_ms:
            return due
    raise ValueError(f"no yearly date for {month_day}")  # unreachable for valid dates


def iso_week(ts_ms: int) -> str:
    """The ISO week of `ts_ms` in UTC, as 2025-W03."""
    return _iso_week_of_day(ts_ms // DAY_MS)


@lru_cache(maxsize=4096)
def _iso_week_of_day(day: int) -> str:
    year, week, _ = date.fromordinal(_EPOCH_ORDINAL + day).isocalendar()
    return f"{year}-W{week:02d}"
