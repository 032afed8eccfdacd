"""A JSON Schema (draft 2020-12) of the journey language, for completion in editors.

The schema describes the shape of a journey file; `journeys validate` checks more
(references between steps and offers, fields read by conditions, reachability).
"""

from __future__ import annotations

from typing import Any

from journeys_dsl import fields, plan
from journeys_dsl.broadcasts import EVERY
from journeys_dsl.channels import CHANNELS
from journeys_dsl.dates import CUSTOMER_DATES, EVENT_DATES
from journeys_dsl.durations import DURATION_PATTERN, SIGNED_DURATION_PATTERN, UNIT_PATTERN
from journeys_dsl.node_reader import ID_PATTERN
from journeys_dsl.parser import TAG_PATTERN, TEMPLATE_PATTERN, VAR_PATTERN

__all__ = ["SCHEMA_ID", "journey_json_schema"]

SCHEMA_ID = "urn:journey-engine:schema:journey"

STEP_TIME_PATTERN = (rf"^\s*((day|Day|DAY)\s*\d+(\s+(at\s+)?\d{{1,2}}:\d{{2}})?"
                     rf"|(\d+\s*{UNIT_PATTERN}\s*)+)\s*$")
LOCAL_TIME_PATTERN = r"^\s*\d{1,2}:\d{2}\s*$"
SHARE_PATTERN = r"^\s*\d+(\.\d+)?\s*%\s*$"
BROADCAST_AT_PATTERN = r"^\s*\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}\s*$"
BROADCAST_UNTIL_PATTERN = r"^\s*\d{4}-\d{2}-\d{2}\s*$"
BROADCAST_RATE_PATTERN = r"^\s*\d+(\.\d+)?\s*/\s*[a-z]+\s*$"


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _ident(description: str) -> dict[str, Any]:
    return _text(description, pattern=ID_PATTERN)


def _duration(description: str, *, signed: bool = False) -> dict[str, Any]:
    return _text(description, pattern=SIGNED_DURATION_PATTERN if signed else DURATION_PATTERN,
                 examples=["-7d"] if signed else ["45d", "12h", "1d12h", "2w"])


def _condition(description: str) -> dict[str, Any]:
    return {
        "type": ["string", "boolean", "number"],
        "description": f"{description} An expression of the journey language, e.g. "
                       "\"customer.visit_count >= 3 and not has_tag('vip')\".",
    }


def _step_ref(description: str) -> dict[str, Any]:
    return _text(f"{description} A step id of this journey, or `end`.", pattern=ID_PATTERN)


def _event_type(description: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(fields.EVENT_TYPES), "description": description}


def _object(description: str, properties: dict[str, Any], required: list[str] | None = None,
            **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def date_sources() -> list[str]:
    """What `at: {date: ...}` may name: the event and customer date fields."""
    event_dates = [f"event.{name}" for names in EVENT_DATES.values() for name in names]
    return [*dict.fromkeys(event_dates), *(f"customer.{name}" for name in CUSTOMER_DATES)]


def _date_field(description: str) -> dict[str, Any]:
    return {"type": "string", "enum": date_sources(), "description": description}


def _shift(properties: dict[str, Any]) -> dict[str, Any]:
    """`before` or `after` (not both) and `time`, shared by the timings at a date."""
    return {
        **properties,
        "before": _duration("How long before the date, e.g. 1d."),
        "after": _duration("How long after the date, e.g. 2h."),
        "time": _text("Local time of day, in quotes, e.g. \"10:00\". Default: the date's "
                      "own time, or 10:00 for a date without one.", pattern=LOCAL_TIME_PATTERN),
    }


def _at_date(description: str) -> dict[str, Any]:
    return _object(description, _shift({
        "date": _date_field("The date: a field of the entry event (event.booked_for) or of "
                            "the customer (customer.birthday)."),
    }), ["date"], **{"not": {"required": ["before", "after"]}})


def _entry() -> dict[str, Any]:
    when_profile = _condition("Checked on the customer's profile (no `event.*` here).")
    return {
        "description": "Who enters the journey, and when. Exactly one kind of entry.",
        "oneOf": [
            _object("Enter when an event arrives and `when` holds; with `at`, at a time "
                    "computed from a date of the event.", {
                "event": _event_type("The event type that triggers entry."),
                "when": _condition("Optional condition on the event and the customer."),
                "at": _at_date("Enter at this time instead of at once; a later event moves "
                               "it."),
            }, ["event"]),
            _object("Enter after a time without a visit.", {
                "inactive_for": _duration("How long without a visit, e.g. 45d."),
                "when": _condition("Checked at the visit that starts the countdown. "
                                   + when_profile["description"]),
            }, ["inactive_for"]),
            _object("Enter every year on a date of the customer's profile.", {
                "date": {"description": "The date: birthday, first_visit_anniversary, or a "
                                        "date field of the customer.", "anyOf": [
                    {"type": "string", "enum": list(plan.DATE_ENTRY_KINDS),
                     "description": "Which date: the birthday or the anniversary of the "
                                    "first visit."},
                    _object("A date field of the customer, every year or once.", _shift({
                        "field": _date_field("The customer's date, e.g. "
                                             "customer.first_visit_at."),
                        "every": {"type": "string", "enum": ["year"],
                                  "description": "Every year on the date's month and day; "
                                                 "once if left out."},
                    }), ["field"], **{"not": {"required": ["before", "after"]}}),
                ]},
                "offset": _duration("Shift from the date, e.g. -3d for three days before. "
                                    "Default 0.", signed=True),
                "at": _text("Local time of entry, in quotes, e.g. \"10:00\". Default 10:00.",
                            pattern=LOCAL_TIME_PATTERN),
                "when": when_profile,
            }, ["date"]),
            _object("Enter when the probability that the customer is still active falls "
                    "below a threshold.", {
                        "p_alive_below": {"type": "number", "exclusiveMinimum": 0,
                                          "exclusiveMaximum": 1,
                                          "description": "Threshold between 0 and 1, "
                                                         "e.g. 0.3."},
                        "when": when_profile,
                    }, ["p_alive_below"]),
            _object("Enter when the customer enters or leaves a segment of the segments "
                    "file.", {
                        "segment": _segment_change(),
                        "when": _condition("Checked at the change. "
                                           + when_profile["description"]),
                    }, ["segment"]),
            _object("Enter everyone in an audience at a local date and time, once or "
                    "repeated.", {"broadcast": _broadcast()}, ["broadcast"]),
        ],
    }


def _segment_change() -> dict[str, Any]:
    segment_id = _ident("A segment id of the segments file, e.g. vip or sleeping.")
    return {
        "description": "The segment change that enters the customer: exactly one of "
                       "`enters` and `leaves`.",
        "oneOf": [
            _object("Enter when the customer becomes a member.", {"enters": segment_id},
                    ["enters"]),
            _object("Enter when the customer stops being a member.", {"leaves": segment_id},
                    ["leaves"]),
        ],
    }


def _broadcast() -> dict[str, Any]:
    return _object("A send to an audience at each customer's local date and time.", {
        "at": _text("Local date and time, in quotes, e.g. \"2026-12-20 10:00\".",
                    pattern=BROADCAST_AT_PATTERN),
        "audience": _condition("Who receives it, checked on the profile at the broadcast "
                               "time, e.g. \"'vip' in customer.segments\". Everyone if left "
                               "out."),
        "every": {"type": "string", "enum": list(EVERY),
                  "description": "Repeat every week or month."},
        "until": _text("With every: the last date, e.g. \"2027-03-31\".",
                       pattern=BROADCAST_UNTIL_PATTERN),
        "rate": _text("Entries per minute per shard, e.g. 200/min (also /s, /hour).",
                      pattern=BROADCAST_RATE_PATTERN),
    }, ["at"])


def _offer() -> dict[str, Any]:
    return _object("A voucher this journey can issue.", {
        "description": _text("What the customer gets, in words."),
        "item": _text("The menu item the voucher applies to."),
        "category": _text("The menu category the voucher applies to."),
        "discount": {"type": ["string", "number"],
                     "description": "The discount as text, e.g. \"100%\", \"5%\", "
                                    "\"10 EUR\"."},
        "dayparts": {"type": "array", "uniqueItems": True,
                     "description": "When the voucher can be used; any time if left out.",
                     "items": {"type": "string", "enum": list(plan.DAYPARTS),
                               "description": "A daypart name."}},
        "valid_for": _duration("How long the voucher is valid after it is issued."),
    }, ["description", "valid_for"])


def _action() -> dict[str, Any]:
    channel = {"type": "string", "enum": list(CHANNELS),
               "description": "The channel to send on."}
    tag = _text("A tag name.", pattern=TAG_PATTERN)
    return {
        "description": "One action; each list item has exactly one kind.",
        "oneOf": [
            _object("Send a message.", {
                "send": channel,
                "template": _text("The message template.", pattern=TEMPLATE_PATTERN),
                "vars": {
                    "type": "object",
                    "description": "Personalisation variables: name -> expression.",
                    "propertyNames": {"pattern": VAR_PATTERN},
                    "additionalProperties": _condition("The variable's value."),
                },
            }, ["send", "template"]),
            _object("Issue a voucher defined under `offers`.", {
                "issue": _ident("The offer id."),
            }, ["issue"]),
            _object("Grant loyalty points.", {
                "points": {"type": "integer", "minimum": 1,
                           "description": "How many points, above 0."},
                "reason": _text("Why, as shown in the points history. Default: the "
                                "journey id."),
            }, ["points"]),
            _object("Add a tag to the customer.", {"tag": tag}, ["tag"]),
            _object("Remove a tag from the customer.", {"untag": tag}, ["untag"]),
        ],
    }


def _branch() -> dict[str, Any]:
    return {
        "description": "A branch arm: `if` with `goto`, or a last `else`.",
        "oneOf": [
            _object("Go to `goto` when `if` holds.", {
                "if": _condition("The arm's condition (no `event.*` in steps)."),
                "goto": _step_ref("Where to go."),
            }, ["if", "goto"]),
            _object("Where to go when no arm holds; must be the last arm.", {
                "else": _step_ref("Where to go."),
            }, ["else"]),
        ],
    }


def _split() -> dict[str, Any]:
    return {"type": "array", "minItems": 2,
            "description": "An experiment: each customer goes to one variant's step, drawn "
                           "at random by weight and fixed per customer, journey and step.",
            "items": _object("A variant.", {
                "variant": _ident("The variant's name, unique in the journey (statistics "
                                  "and `journey.variant` use it)."),
                "weight": {"description": "Its weight against the other variants: 50%, or "
                                          "a number such as 1; percentages add up to 100%.",
                           "anyOf": [_text("A percentage.", pattern=SHARE_PATTERN),
                                     {"type": "number", "exclusiveMinimum": 0,
                                      "description": "A relative weight above 0."}]},
                "goto": _step_ref("Where the variant's customers go."),
            }, ["variant", "weight", "goto"])}


def _step() -> dict[str, Any]:
    timing_pairs = [["at", "after"], ["at", "wait_for"], ["after", "wait_for"]]
    split_clashes = [["split", key] for key in ("branch", "next", "wait_for")]
    return _object("A step. Without `at`, `after` or `wait_for` it runs as soon as the "
                   "customer arrives at it.", {
        "id": _text("The step id, unique in the journey (not `end`).", pattern=ID_PATTERN,
                    **{"not": {"const": "end"}}),
        "at": {"description": "When to run: relative to entry, or to a date.", "anyOf": [
            _text("When to run, relative to entry: \"day 7\", \"day 1 11:00\" or a "
                  "duration such as 36h.", pattern=STEP_TIME_PATTERN),
            _at_date("When to run, relative to a date: {date: event.booked_for, before: 1d, "
                     "time: \"10:00\"}."),
        ]},
        "after": _duration("When to run, relative to arriving at this step, e.g. 2h."),
        "wait_for": _object("Wait for an event; on it go on to `next`, after `timeout` to "
                            "`on_timeout`.", {
            "event": _event_type("The event type to wait for."),
            "when": _condition("Optional condition on the event."),
            "timeout": _duration("How long to wait."),
            "on_timeout": _step_ref("Where to go after the timeout. Default `end`."),
        }, ["event", "timeout"]),
        "if": _condition("Guard: when false the actions are skipped and the step still "
                         "moves on (no `event.*` in steps)."),
        "actions": {"type": "array", "description": "What the step does, in order.",
                    "items": _action()},
        "branch": {"type": "array", "minItems": 1,
                   "description": "Where to go next, by condition; the first arm that holds "
                                  "wins.",
                   "items": _branch()},
        "next": _step_ref("Where to go after this step. Default: the following step (`end` "
                          "after the last)."),
        "split": _split(),
    }, ["id"], **{"not": {"anyOf": [{"required": pair}
                                    for pair in timing_pairs + split_clashes]}})


def _event_rule(what: str, extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return _object(what, {
        "event": _event_type("The event type."),
        "when": _condition("Optional condition on the event and the customer."),
        **extra,
    }, ["event", *required])


def journey_json_schema() -> dict[str, Any]:
    """The JSON Schema of a journey file."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Journey",
        "description": "A customer journey: who enters, when, and what happens at each step.",
        "type": "object",
        "additionalProperties": False,
        "required": ["journey", "version", "entry", "steps"],
        "properties": {
            "journey": _ident("The journey id, e.g. impressed_newcomer."),
            "version": {"type": "integer", "minimum": 1,
                        "description": "The version; bump it for every change. Customers "
                                       "stay on the version they entered."},
            "name": _text("Display name. Default: the journey id."),
            "description": _text("What the journey is for."),
            "entry": _entry(),
            "re_entry": {
                "description": "May a customer enter again after leaving: never (default), "
                               "always, or a duration since the last exit such as 90d.",
                "anyOf": [
                    {"type": "string", "enum": ["never", "always"],
                     "description": "Never again, or at every new trigger."},
                    _duration("Time since the last exit."),
                ],
            },
            "holdout": {
                "description": "Share of entrants who get nothing, to measure lift: \"10%\" "
                               "or 0.1. Default 0.",
                "anyOf": [
                    _text("A percentage.", pattern=SHARE_PATTERN),
                    {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                     "description": "A share between 0 and 1."},
                ],
            },
            "goal": _event_rule("The conversion the journey is measured by.", {
                "within": _duration("Counted when reached within this time of entry."),
            }, ["within"]),
            "exit": {"type": "array",
                     "description": "Events and conditions that end the journey early.",
                     "items": {"oneOf": [
                         _event_rule("End the journey when this event arrives.", {
                             "reason": _ident("Name of the exit in statistics. Default "
                                              "`<event>_<index>`."),
                         }, []),
                         _object("End the journey when a condition becomes true, after an "
                                 "event or with the passage of time.", {
                                     "when": _condition("The condition, on `customer.*`, "
                                                        "`offer.*` and `journey.*` (no "
                                                        "`event.*`)."),
                                     "reason": _ident("Name of the exit in statistics. "
                                                      "Default `condition_<index>`."),
                                 }, ["when"]),
                     ]}},
            "offers": {"type": "object",
                       "description": "Vouchers this journey can issue, by offer id.",
                       "propertyNames": {"pattern": ID_PATTERN},
                       "additionalProperties": _offer()},
            "steps": {"type": "array", "minItems": 1,
                      "description": "The steps, run from the first.",
                      "items": _step()},
        },
    }
