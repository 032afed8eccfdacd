"""Quiet hours and send windows worked out on local wall-clock arithmetic agree with their
definition on `datetime`, in zones with and without offset changes, around every change."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType

import pytest

from engine.core.policy_gate import SEARCH_DAYS, PolicyGate
from engine.core.state import CustomerState
from engine.core.timeutil import DAY_MS, zone
from journeys_dsl.policies import Minutes, Policies

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
         "America/St_Johns", "Pacific/Chatham", "America/Santiago", "UTC", None)


def _inside(minute: int, window: Minutes) -> bool:
    start, end = window
    return start <= minute < end if start < end else minute >= start or minute < end


def _allowed(moment: datetime, quiet: Minutes | None, windows: list[Minutes]) -> bool:
    minute = moment.hour * 60 + moment.minute
    if quiet is not None and _inside(minute, quiet):
        return False
    return all(_inside(minute, window) for window in windows)


def _send_time_by_datetime(due: int, quiet: Minutes | None, windows: list[Minutes],
                           tz: tzinfo) -> int:
    """The definition: step through aware datetimes in the customer's zone."""
    candidate = due
    for _ in range(64):
        moment = datetime.fromtimestamp(candidate / 1000, tz)
        if _allowed(moment, quiet, windows):
            return candidate
        boundaries = [window[0] for window in windows]
        if quiet is not None:
            boundaries.append(quiet[1])
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        best: datetime | None = None
        for day in range(SEARCH_DAYS):
            base = midnight + timedelta(days=day)
            for minutes in boundaries:
                local = (base + timedelta(minutes=minutes)).replace(tzinfo=None)
                opening = local.replace(tzinfo=moment.tzinfo)
                if opening > moment and _allowed(opening, quiet, windows) and (
                        best is None or opening < best):
                    best = opening
        if best is None:
            best = midnight + timedelta(days=1, minutes=min(boundaries or [0]))
        candidate = int(best.timestamp() * 1000)
    return candidate


def _window(draw: random.Random) -> Minutes:
    start = draw.choice((0, 120, 150, 540, 600, 1200, 1260, draw.randrange(1440)))
    end = draw.choice((0, 180, 540, 1200, 1439, draw.randrange(1440)))
    return (start, end) if start != end else (start, (end + 60) % 1440)


@pytest.mark.parametrize("zone_name", ZONES)
def test_send_times_agree_with_datetime(zone_name: str | None) -> None:
    draw = random.Random(f"send {zone_name}")
    tz = zone(zone_name)
    dues = [draw.randrange(0, 4_000_000_000_000) for _ in range(1500)]
    for year in (1995, 2016, 2025, 2031):
        for month in (3, 4, 9, 10, 11):  # the days around both hemispheres' changes
            start = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
            dues.extend(start + draw.randrange(0, 31 * DAY_MS) for _ in range(60))
    state = CustomerState("ann")
    state.profile.timezone = zone_name
    for due in dues:
        quiet = _window(draw) if draw.random() < 0.8 else None
        windows = [_window(draw) for _ in range(draw.choice((0, 1, 1, 2)))]
        if quiet is None and not windows:
            continue
        channels = ["email", "sms"][:len(windows)] or ["email"]
        gate = PolicyGate(Policies("p", None, quiet, MappingProxyType(dict(zip(
            channels, windows, strict=False))), "opt_out"))
        assert gate.send_time(due, channels, state) == _send_time_by_datetime(
            due, quiet, windows, tz), (due, quiet, windows)
