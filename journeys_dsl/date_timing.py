"""Reading timings relative to a date: step times, and entries at a date.

    at: {date: event.booked_for, before: 1d, time: "10:00"}            # a step
    entry: {event: booking, at: {date: event.booked_for, before: 1d}}   # enter at a time
    entry: {date: {field: customer.first_visit_at, every: year, before: 7d}}

`date` names a date field (see `journeys_dsl.dates`); `before` or `after` shifts it by a
duration of the shared grammar; `time` sets the local time of day.
"""

from __future__ import annotations

from collections.abc import Callable

from journeys_dsl import fields, plan
from journeys_dsl.dates import CUSTOMER_DATES, EVENT_DATES
from journeys_dsl.durations import DurationError, format_duration, parse_local_time
from journeys_dsl.node_reader import NodeReader, did_you_mean
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode

__all__ = ["AT_DATE_KEYS", "DATE_FIELD_KEYS", "date_label", "read_at_date",
           "read_date_field_entry"]

AT_DATE_KEYS = ("date", "before", "after", "time")
DATE_FIELD_KEYS = ("field", "every", "before", "after", "time")
EVERY = ("year",)
_ROOTS = ("event", "customer")


def date_label(timing: plan.AtDate) -> str:
    """"1d before event.booked_for at 10:00", "on customer.birthday"."""
    offset = timing.offset_s
    label = (f"on {timing.date.source}" if offset == 0 else
             f"{format_duration(abs(offset))} {'before' if offset < 0 else 'after'} "
             f"{timing.date.source}")
    if timing.local_time is not None:
        hour, minute = timing.local_time
        label += f" at {hour:02d}:{minute:02d}"
    return label


def read_at_date(reader: NodeReader, node: MappingNode, path: str, event_type: str | None,
                 no_event: str | None) -> plan.AtDate | None:
    """A step's or an entry's `at: {date: ..., before|after: ..., time: ...}`.

    `event_type` is the type of the event whose fields `event.*` reads; `no_event` says
    why there is none (then `event.*` is refused with it)."""
    where = f"in {path}"
    reader.keys(node, AT_DATE_KEYS, where, path)
    date_node = reader.require(node, "date", where, path)
    ref = (read_date_ref(reader, date_node, f"{path}.date", event_type, no_event)
           if date_node is not None else None)
    offset = _offset(reader, node, path)
    local_time = _time(reader, node, path)
    if ref is None:
        return None
    return plan.AtDate(ref, offset, local_time)


def read_date_field_entry(reader: NodeReader, node: MappingNode, path: str,
                          condition: plan.Expression | None) -> plan.DateFieldEntry | None:
    """`entry: {date: {field: customer.x, every: year, before|after: ..., time: ...}}`."""
    where = f"in {path}"
    reader.keys(node, DATE_FIELD_KEYS, where, path)
    field_node = reader.require(node, "field", where, path)
    no_event = ("a date entry has no triggering event: its date is a field of the customer "
                "(customer.birthday); to enter at a date of an event, write "
                "entry: {event: booking, at: {date: event.booked_for, before: 1d}}")
    ref = (read_date_ref(reader, field_node, f"{path}.field", None, no_event)
           if field_node is not None else None)
    every_node = reader.optional(node, "every")
    yearly = False
    if every_node is not None:
        yearly = reader.choice(every_node, "every", f"{path}.every", EVERY) is not None
    if (ref is not None and not yearly and field_node is not None
            and CUSTOMER_DATES.get(ref.name) == "month_day"):
        reader.report(field_node, f"'{ref.source}' has no year, so it comes back every year: "
                                  "add 'every: year'", f"{path}.field")
        ref = None
    offset = _offset(reader, node, path)
    local_time = _time(reader, node, path)
    if ref is None:
        return None
    return plan.DateFieldEntry(ref, yearly, offset, local_time, condition)


def read_date_ref(reader: NodeReader, node: Node, path: str, event_type: str | None,
                  no_event: str | None) -> plan.DateRef | None:
    """`event.<date field>` or `customer.<date field>`, with "did you mean" and a refusal of
    fields that hold no date."""
    text = reader.text(node, "date", path)
    if text is None:
        return None
    written = text.strip()
    root, dot, name = written.partition(".")
    column = _column(node, text, written)
    if root not in _ROOTS or not dot or not name or "." in name:
        hint = did_you_mean(root, _ROOTS) if root not in _ROOTS else ""
        reader.report(column(0), f"'{written}' is not a date field; name a date of the entry "
                                 f"event (event.booked_for) or of the customer ({_examples()})"
                                 f"{hint}", path)
        return None
    at_name = column(len(root) + 1)
    if root == "customer":
        if name in CUSTOMER_DATES:
            return plan.DateRef("customer", name)
        if name in fields.CUSTOMER_FIELDS:
            reader.report(at_name, f"'customer.{name}' is not a date; dates of the customer: "
                                   f"{', '.join(CUSTOMER_DATES)}", path)
        else:
            hint = (did_you_mean(name, CUSTOMER_DATES) or did_you_mean(name, fields.CUSTOMER_FIELDS)
                    or f"; dates of the customer: {', '.join(CUSTOMER_DATES)}")
            reader.report(at_name, f"unknown field '{name}' of the customer{hint}", path)
        return None
    if no_event is not None:
        reader.report(column(0), no_event, path)
        return None
    if event_type is None:
        return None  # the event type is itself wrong; reported there
    vocabulary = reader.vocabulary
    event_dates = vocabulary.event_dates if vocabulary is not None else EVENT_DATES
    event_fields = vocabulary.event_fields if vocabulary is not None else fields.EVENT_FIELDS
    if name in event_dates.get(event_type, {}):
        return plan.DateRef("event", name)
    dates = tuple(event_dates.get(event_type, {}))
    known = (*fields.EVENT_COMMON, *event_fields.get(event_type, ()))
    listed = (f"; dates of a {event_type} event: {', '.join(dates)}" if dates
              else f"; a {event_type} event has no date field")
    if name in known:
        reader.report(at_name, f"'event.{name}' is not a date{listed}", path)
    else:
        hint = did_you_mean(name, dates) or did_you_mean(name, known) or listed
        reader.report(at_name, f"unknown field '{name}' of a {event_type} event{hint}", path)
    return None


def _examples() -> str:
    return ", ".join(f"customer.{name}" for name in CUSTOMER_DATES)


def _column(node: Node, text: str, written: str) -> Callable[[int], tuple[int, int]]:
    """Where character `offset` of the stripped text `written` is in the file."""
    lead = len(text) - len(text.lstrip())

    def at(offset: int) -> tuple[int, int]:
        if isinstance(node, ScalarNode):
            return node.position(lead + offset)
        return node.line, node.col

    return at


def _offset(reader: NodeReader, node: MappingNode, path: str) -> int:
    """Seconds after the date (negative: before) from `before` or `after`."""
    before = node.get("before")
    after = node.get("after")
    if before is not None and after is not None:
        second = max(before, after, key=lambda e: (e.key.line, e.key.col))
        reader.report(second.key, "give 'before' or 'after', not both", f"{path}.{second.key.text}")
        return 0
    chosen = before or after
    if chosen is None:
        return 0
    key = chosen.key.text
    seconds = reader.duration(chosen.value, key, f"{path}.{key}", positive=False)
    if seconds is None:
        return 0
    return -seconds if key == "before" else seconds


def _time(reader: NodeReader, node: MappingNode, path: str) -> tuple[int, int] | None:
    time_node = reader.optional(node, "time")
    if time_node is None:
        return None
    scalar = reader.scalar(time_node, "time", f"{path}.time")
    if scalar is None:
        return None
    try:
        return parse_local_time(scalar.text)
    except DurationError as exc:
        reader.report(time_node, exc.message, f"{path}.time")
        return None
