"""The fields a journey can time steps and entries by, and how each one's value reads.

    at: {date: event.booked_for, before: 1d, time: "10:00"}
    entry: {date: {field: customer.first_visit_at, every: year, before: 7d}}

A field's kind says how its value reads:

- `month_day`: a yearly date without a year, `MM-DD` (`customer.birthday`);
- `instant`: a moment in epoch milliseconds (`customer.first_visit_at`);
- `iso`: ISO-8601 text: a date (`2025-06-01`), a local date and time
  (`2025-06-01T19:30`, in the customer's time zone) or a moment with its UTC offset
  (`2025-06-01T19:30:00+02:00`).

A new built-in date field is one call to `add_event_date` (kind `iso` for text, `instant`
for epoch milliseconds): validation, the JSON schema and the engine read these tables.
The `datetime` and `date` fields of declared event types are dates too, kept apart so that
they go with the event types file: validation reads them from its vocabulary
(`Vocabulary.with_event_types`), the engine from `DECLARED_DATES`, which
`engine.core.declared_events.install` replaces with each file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

DateKind = Literal["month_day", "instant", "iso"]

CUSTOMER_DATES: Mapping[str, DateKind] = {
    "birthday": "month_day",
    "first_visit_at": "instant",
    "last_visit_at": "instant",
    "last_rating_at": "instant",
    "first_presence_at": "instant",
    "last_presence_at": "instant",
}
"""The customer's date fields."""

CUSTOMER_DATE_EVENTS: Mapping[str, tuple[str, ...]] = {
    "birthday": ("profile",),
    "first_visit_at": ("visit",),
    "last_visit_at": ("visit",),
    "last_rating_at": ("rating",),
    "first_presence_at": ("presence",),
    "last_presence_at": ("presence",),
}
"""The event types that change each customer date (an entry on it is armed again)."""

EVENT_DATES: dict[str, dict[str, DateKind]] = {
    "booking": {"booked_for": "iso"},
}
"""Date fields by event type."""

DECLARED_DATES: dict[str, dict[str, DateKind]] = {}
"""Date fields of the declared event types the engine runs with (see
`engine.core.declared_events.install`), replaced as a whole by `declare_event_dates`."""


def add_event_date(event_type: str, name: str, kind: DateKind = "iso") -> None:
    """Make `event.<name>` of `event_type` events a date steps and entries can time by."""
    EVENT_DATES.setdefault(event_type, {})[name] = kind


def declare_event_dates(dates: Mapping[str, Mapping[str, DateKind]]) -> None:
    """Make `dates` the date fields of the declared event types (replacing any before)."""
    DECLARED_DATES.clear()
    DECLARED_DATES.update({event_type: dict(names) for event_type, names in dates.items()})


def event_date_kind(event_type: str, name: str) -> DateKind | None:
    """The kind of a date field of an event type; None when it is not a date."""
    kind = EVENT_DATES.get(event_type, {}).get(name)
    if kind is None and DECLARED_DATES:
        kind = DECLARED_DATES.get(event_type, {}).get(name)
    return kind


def customer_date_events(name: str) -> tuple[str, ...]:
    """The event types that may change a customer date."""
    return CUSTOMER_DATE_EVENTS.get(name, ())
