"""Times computed from dates: steps and entries timed by a date of the entry event or of
the customer's profile (`at: {date: event.booked_for, before: 1d, time: "10:00"}`).

A date's value is one of:

- an int: a moment, epoch milliseconds (a profile's `first_visit_at`, or ISO text with
  its UTC offset);
- `MM-DD`: a yearly date (a birthday);
- `YYYY-MM-DD`: a calendar date, or `YYYY-MM-DDTHH:MM`: a local date and time; both read in
  the customer's time zone when the time is computed.

The time is the date shifted by the offset (whole days on the local calendar, so a
booking at 19:30 moved back one day stays at 19:30 across a clock change; the rest
exactly), then set to the local `time` of the day it falls on. A date without a time of
day is taken at 10:00 when no `time` is given.

`date_of` is the one place a date is read: a new date source (a declared event type's
datetime field) needs only its kind in `journeys_dsl.dates`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.core.events import MAX_TS_MS, MIN_TS_MS, Event
from engine.core.presence import CUSTOMER_FIELDS as PRESENCE_FIELDS
from engine.core.state import CustomerState, Enrollment
from engine.core.timeutil import DAY_MS, at_local_time, zone
from journeys_dsl.dates import CUSTOMER_DATES, DateKind, event_date_kind
from journeys_dsl.plan import AtDate, DateFieldEntry, DateRef, EventDateEntry, JourneyPlan

__all__ = [
    "DEFAULT_TIME",
    "MAX_AHEAD_MS",
    "DateValue",
    "at_date_time",
    "capture_dates",
    "date_of",
    "event_entry_due",
    "field_entry_due",
    "read_date",
    "step_due",
]

DateValue = int | str
_OUT_OF_RANGE = (OverflowError, ValueError, OSError)
"""What computing a time far outside the calendar raises."""
DEFAULT_TIME = (10, 0)
"""The local time of a date without a time of day, when the timing gives none."""
MAX_AHEAD_MS = 730 * DAY_MS
"""A step or an event's entry due more than two years ahead is skipped (`date_too_far`):
such a date is almost always a typo, and waiting for it would keep the customer in the
journey, or hold the entry, for years."""


def read_date(raw: Any, kind: DateKind | None) -> DateValue | None:
    """A field's raw value as a date value; None when it is missing or not a date."""
    if raw is None or isinstance(raw, bool) or kind is None:
        return None
    if isinstance(raw, int):
        return raw if kind != "month_day" and MIN_TS_MS <= raw < MAX_TS_MS else None
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if kind == "month_day":
        return text if _month_day(text) is not None else None
    return parse_date_text(text)


def parse_date_text(text: str) -> DateValue | None:
    """ISO-8601 text as a date value: a moment when it has a UTC offset, else the local date
    (and time) as text; None when it is not a date of 2000-2099."""
    if len(text) < 10 or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        ms = round(moment.timestamp() * 1000)
        return ms if MIN_TS_MS <= ms < MAX_TS_MS else None
    if not 2000 <= moment.year < 2100:
        return None
    if len(text) == 10:
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M")


def date_of(ref: DateRef, state: CustomerState, event: Event | None = None) -> DateValue | None:
    """The date `ref` names for this customer (and this event, for `event.*`)."""
    if ref.root == "customer":
        presence = PRESENCE_FIELDS.get(ref.name)
        value = (presence(state.profile.presence, 0) if presence is not None
                 else getattr(state.profile, ref.name, None))
        return read_date(value, CUSTOMER_DATES.get(ref.name))
    if event is None:
        return None
    return read_date(event.field(ref.name), event_date_kind(event.type, ref.name))


def capture_dates(names: tuple[str, ...], event: Event) -> list[DateValue | None] | None:
    """The entry event's dates that steps are timed by, in the order of `names`, to keep
    on the enrollment; None when it has none of them."""
    values = [read_date(event.field(name), event_date_kind(event.type, name))
              for name in names]
    return values if any(value is not None for value in values) else None


def at_date_time(timing: AtDate, value: DateValue, anchor_ms: int,
                 tz_name: str | None) -> int:
    """Epoch ms of `timing` for a date; a yearly date is its first occurrence on or after the
    local day of `anchor_ms`."""
    tz = zone(tz_name)
    if isinstance(value, int):
        return _shift(datetime.fromtimestamp(value / 1000, tz), True, timing.offset_s,
                      timing.local_time, tz_name, value)
    if len(value) == 5:
        month, day = _month_day(value) or (1, 1)
        anchor = datetime.fromtimestamp(anchor_ms / 1000, tz).date()
        year = anchor.year if (month, day) >= (anchor.month, anchor.day) else anchor.year + 1
        return _shift(_on(year, month, day, tz), False, timing.offset_s, timing.local_time,
                      tz_name)
    moment = datetime.fromisoformat(value).replace(tzinfo=tz)
    return _shift(moment, len(value) > 10, timing.offset_s, timing.local_time, tz_name)


def step_due(state: CustomerState, plan: JourneyPlan, enrollment: Enrollment,
             timing: AtDate) -> tuple[int, str | None]:
    """When a date step runs, and why it is skipped instead (then at arrival): `no_date`
    (missing or not a date), `date_passed` (before the customer arrived at the step),
    `date_too_far` (more than `MAX_AHEAD_MS` ahead)."""
    arrived = enrollment.arrived_at
    ref = timing.date
    value: DateValue | None
    if ref.root == "event":
        dates = enrollment.dates
        names = plan.event_dates
        index = names.index(ref.name) if ref.name in names else len(names)
        value = dates[index] if dates is not None and index < len(dates) else None
    else:
        value = date_of(ref, state)
    if value is None:
        return arrived, "no_date"
    try:
        due = at_date_time(timing, value, enrollment.entered_at, state.profile.timezone)
    except _OUT_OF_RANGE:  # a shift past any calendar
        return arrived, "date_too_far"
    if due < arrived:
        return arrived, "date_passed"
    if due - arrived > MAX_AHEAD_MS:
        return arrived, "date_too_far"
    planned = enrollment.due_at
    if planned is not None and due < planned:
        return planned, None  # a customer date moved earlier: run when it was planned
    return due, None


def event_entry_due(state: CustomerState, entry: EventDateEntry,
                    event: Event) -> tuple[int | None, str | None]:
    """When an event arms its entry, or why it does not (see `step_due`)."""
    value = date_of(entry.at.date, state, event)
    if value is None:
        return None, "no_date"
    try:
        due = at_date_time(entry.at, value, event.ts, state.profile.timezone)
    except _OUT_OF_RANGE:
        return None, "date_too_far"
    if due < event.ts:
        return None, "date_passed"
    if due - event.ts > MAX_AHEAD_MS:
        return None, "date_too_far"
    return due, None


def field_entry_due(state: CustomerState, entry: DateFieldEntry, after_ms: int) -> int | None:
    """The entry's next time after `after_ms`: yearly, the next anniversary (in a year
    after the date's own, for a date with a year); once, the date's time if still ahead.
    None when there is none (no date, or a shift past any calendar)."""
    try:
        return _field_entry_due(state, entry, after_ms)
    except _OUT_OF_RANGE:
        return None


def _field_entry_due(state: CustomerState, entry: DateFieldEntry, after_ms: int) -> int | None:
    value = date_of(entry.date, state)
    if value is None:
        return None
    tz_name = state.profile.timezone
    tz = zone(tz_name)
    if not entry.yearly:
        timing = AtDate(entry.date, entry.offset_s, entry.local_time)
        due = at_date_time(timing, value, after_ms, tz_name)
        return due if due > after_ms else None
    first_year = 0
    if isinstance(value, int):
        local = datetime.fromtimestamp(value / 1000, tz)
        month, day, first_year = local.month, local.day, local.year + 1
    elif len(value) == 5:
        month, day = _month_day(value) or (1, 1)
    else:
        month, day, first_year = int(value[5:7]), int(value[8:10]), int(value[:4]) + 1
    year = datetime.fromtimestamp(after_ms / 1000, tz).year
    for candidate in range(max(year - 1, first_year), max(year, first_year) + 3):
        due = _shift(_on(candidate, month, day, tz), False, entry.offset_s, entry.local_time,
                     tz_name)
        if due > after_ms:
            return due
    return None


def _shift(moment: datetime, has_time: bool, offset_s: int,
           local_time: tuple[int, int] | None, tz_name: str | None,
           exact_ms: int | None = None) -> int:
    """`moment` moved by `offset_s` (days on the local calendar, the rest exactly), then set
    to `local_time` (or 10:00 for a date without a time of day)."""
    sign = -1 if offset_s < 0 else 1
    days, rest = divmod(abs(offset_s), 86_400)
    if days:
        moment = moment + timedelta(days=sign * days)  # wall-clock arithmetic in its zone
        exact_ms = None
    ms = exact_ms if exact_ms is not None else round(moment.timestamp() * 1000)
    ms += sign * rest * 1000
    if local_time is None and not has_time:
        local_time = DEFAULT_TIME
    if local_time is not None:
        ms = at_local_time(ms, local_time[0], local_time[1], tz_name)
    return ms


def _on(year: int, month: int, day: int, tz: Any) -> datetime:
    """Local midnight of a date; 29 February is 28 February in other years."""
    while True:
        try:
            return datetime(year, month, day, tzinfo=tz)
        except ValueError:
            if day <= 28:
                raise
            day -= 1


def _month_day(text: str) -> tuple[int, int] | None:
    if len(text) != 5 or text[2] != "-" or not (text[:2] + text[3:]).isdigit():
        return None
    month, day = int(text[:2]), int(text[3:])
    return (month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None
