"""The event types of an event types file, as the decoder and the runtime read them.

`install` fills the process-wide tables once at start (`journeys run`, `journeys backtest`);
they stay empty otherwise, so the built-in types pay nothing for them. Each event of a
declared type is checked against its declaration by `validate_declared`: a missing or
mistyped field is refused with a reason that names the field.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import date, datetime
from typing import Any

from journeys_dsl.dates import declare_event_dates
from journeys_dsl.event_types import NO_EVENT_TYPES, DeclaredField, DeclaredType, EventTypes

MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

DECLARED: dict[str, DeclaredType] = {}
"""Declared event types by name (empty: none declared)."""
EXTRA_ZONES: list[str] = []
"""Presence zones added by the event types file."""
VISIT_TYPES: set[str] = set()
"""Declared types that count as a visit."""


def install(event_types: EventTypes = NO_EVENT_TYPES) -> None:
    """Make `event_types` the declared types of this process (replacing any before)."""
    DECLARED.clear()
    DECLARED.update(event_types.types)
    EXTRA_ZONES[:] = event_types.presence_zones
    VISIT_TYPES.clear()
    VISIT_TYPES.update(name for name, kind in event_types.types.items() if kind.visit)
    declare_event_dates(event_types.date_fields())


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    """" (did you mean 'x'?)" when a close match exists, else ""."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate_declared(declared: DeclaredType, raw: dict[str, Any]) -> dict[str, Any]:
    """The declared fields of `raw`, checked; raises ValueError naming the field at fault."""
    data: dict[str, Any] = {}
    if declared.venue:
        venue = raw.get("venue_id")
        if not isinstance(venue, str) or not venue:
            raise ValueError(f"missing or non-string 'venue_id' ({declared.name} events "
                             "carry a venue)")
        if len(venue) > MAX_ID_LENGTH:
            raise ValueError(f"'venue_id' is longer than {MAX_ID_LENGTH} characters")
        data["venue_id"] = venue
    for one in declared.fields:
        value = raw.get(one.name)
        if value is None:
            if one.required:
                raise ValueError(f"missing '{one.name}' (a {one.type} field of "
                                 f"{declared.name} events)")
            continue
        data[one.name] = _checked(one, value)
    return data


def _checked(one: DeclaredField, value: Any) -> Any:
    name, kind = one.name, one.type
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"'{name}' must be text, got {type(value).__name__}")
        if len(value) > MAX_TEXT_LENGTH:
            raise ValueError(f"'{name}' is longer than {MAX_TEXT_LENGTH} characters")
        if one.values and value not in one.values:
            raise ValueError(f"'{name}' must be one of {', '.join(one.values)}, got "
                             f"{value!r:.60}{did_you_mean(value, one.values)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"'{name}' must be true or false, got {value!r:.60}")
        return value
    if kind in ("int", "number"):
        whole = isinstance(value, int) and not isinstance(value, bool)
        if kind == "int" and not whole:
            raise ValueError(f"'{name}' must be a whole number, got {value!r:.60}")
        if not whole and (not isinstance(value, float) or not math.isfinite(value)):
            raise ValueError(f"'{name}' must be a number, got {value!r:.60}")
        if one.minimum is not None and value < one.minimum:
            raise ValueError(f"'{name}' must be at least {one.minimum:g}, got {value}")
        if one.maximum is not None and value > one.maximum:
            raise ValueError(f"'{name}' must be at most {one.maximum:g}, got {value}")
        return value
    if not isinstance(value, str) or len(value) > 60:
        raise ValueError(f"'{name}' must be a {kind} as text, got {value!r:.60}")
    if kind == "date":
        try:
            if not _DATE.match(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{name}' must be a date such as 2026-05-17, got "
                             f"{value!r:.60}") from None
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{name}' must be an ISO-8601 date and time, got "
                         f"{value!r:.60}") from None
    if moment.utcoffset() is None:
        raise ValueError(f"'{name}' has no UTC offset: {value!r:.60} (add Z or +01:00)")
    return value
