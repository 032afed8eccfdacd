"""Broadcast entries: one-off and recurring sends to an audience at a local date and time.

```yaml
entry:
  broadcast:
    at: "2026-12-20 10:00"                   # each customer's local time
    audience: "'vip' in customer.segments"   # optional: everyone when left out
    every: week                              # optional: week or month
    until: "2027-03-31"                      # optional with every: the last date
    rate: 200/min                            # optional: entries per minute, per shard
```

Local times are kept as "naive" epoch milliseconds: the wall-clock time read as if it
were UTC. An occurrence reaches a customer at that wall-clock time in the customer's zone.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from engine.errors import JourneysError
from journeys_dsl import plan
from journeys_dsl.node_reader import NodeReader, Scope, did_you_mean
from journeys_dsl.yaml_nodes import MappingNode, Node

T = TypeVar("T")

BROADCAST_KEYS = ("at", "audience", "every", "until", "rate")
EVERY = ("week", "month")
RATE_UNITS = {"s": 1 / 60, "sec": 1 / 60, "second": 1 / 60, "min": 1.0, "minute": 1.0,
              "h": 60.0, "hour": 60.0}
"""Minutes in each unit a rate may be given per."""
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MAX_OCCURRENCES = 1000
"""A recurring broadcast lists at most this many occurrences (about 19 years weekly)."""

LAST_LOCAL_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
"""The last local time a date can have: repeats end there."""

_DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*([a-z]+)")
_AUDIENCE_NO_EVENT = ("a broadcast has no triggering event: its audience is checked on the "
                      "customer's profile at the broadcast time; use customer.* instead")
_BEFORE_ENTRY = "the customer has not entered the journey yet when the audience is checked"


class BroadcastFormatError(JourneysError, ValueError):
    """A broadcast date, time or rate that cannot be read; `message` says how to write it."""

    code = "broadcast_format"


def parse_local_datetime(text: str) -> int:
    """Naive epoch ms of "YYYY-MM-DD HH:MM" (a wall-clock time, in no zone)."""
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        raise BroadcastFormatError(
            f"expected a local date and time like \"2026-12-20 10:00\", not '{text}'")
    year, month, day, hour, minute = (int(part) for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError as exc:
        raise BroadcastFormatError(
            f"'{text.strip()}' is not a real date and time ({exc}); expected a local date "
            "and time like \"2026-12-20 10:00\"") from exc
    return int(moment.timestamp() * 1000)


def parse_local_date(text: str) -> int:
    """Naive epoch ms of the end of the day "YYYY-MM-DD" (its last millisecond)."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise BroadcastFormatError(f"expected a date like \"2027-03-31\", not '{text}'")
    try:
        year, month, number = (int(part) for part in match.groups())
        day = datetime(year, month, number, tzinfo=UTC)
    except ValueError as exc:
        raise BroadcastFormatError(f"'{text.strip()}' is not a real date ({exc})") from exc
    return int(day.timestamp() * 1000) + DAY_MS - 1


def parse_rate(text: str) -> float:
    """Entries per minute of a rate such as "200/min", "5/s" or "1000/hour"."""
    match = _RATE.fullmatch(text.strip().lower())
    if match is None:
        raise BroadcastFormatError(
            f"expected a rate like '200/min' (per s, min or hour), not '{text}'")
    count, unit = float(match.group(1)), match.group(2)
    per = RATE_UNITS.get(unit) or RATE_UNITS.get(unit.rstrip("s"))
    if per is None:
        raise BroadcastFormatError(
            f"unknown unit '{unit}' in rate '{text.strip()}'"
            f"{did_you_mean(unit, tuple(RATE_UNITS)) or '; use s, min or hour'}")
    if count <= 0:
        raise BroadcastFormatError(f"a rate must be above 0, not '{text.strip()}'")
    return count / per


def add_months(local_ms: int, months: int) -> int:
    """The same day of the month and time `months` later; a day the month lacks falls on
    its last day (the 31st is the 30th in April)."""
    moment = datetime.fromtimestamp(local_ms / 1000, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp() * 1000)


def occurrences(entry: plan.BroadcastEntry) -> list[int]:
    """The naive local times of every occurrence of a broadcast, in order."""
    if entry.every == "once":
        return [entry.start_local_ms]
    last = LAST_LOCAL_MS if entry.until_local_ms is None \
        else min(entry.until_local_ms, LAST_LOCAL_MS)
    out: list[int] = []
    for k in range(MAX_OCCURRENCES):
        if entry.every == "week":
            local = entry.start_local_ms + k * WEEK_MS
        else:
            try:
                local = add_months(entry.start_local_ms, k)
            except ValueError:  # past the year 9999
                break
        if local > last:
            break
        out.append(local)
    return out


def describe(entry: plan.BroadcastEntry) -> str:
    """The broadcast in words, for the console and reports."""
    first = datetime.fromtimestamp(entry.start_local_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    text = f"a broadcast at {first} local time"
    if entry.every != "once":
        text += f", every {entry.every}"
        if entry.until_local_ms is not None:
            until = datetime.fromtimestamp(entry.until_local_ms / 1000, UTC).date().isoformat()
            text += f" until {until}"
    if entry.rate_per_minute is not None:
        text += f", {entry.rate_per_minute:g} entries a minute per shard"
    return text


def read_broadcast(reader: NodeReader, node: Node, now_ms: int | None = None
                   ) -> plan.BroadcastEntry | None:
    """The broadcast entry of `entry.broadcast`, reporting problems on `reader`; past
    dates are warned about (against `now_ms`, by default the wall clock)."""
    body = reader.mapping(node, "broadcast", "entry.broadcast")
    if body is None:
        return None
    reader.keys(body, BROADCAST_KEYS, "in entry.broadcast", "entry.broadcast")
    start = _parsed(reader, body, "at", parse_local_datetime, required=True)
    every_node = reader.optional(body, "every")
    every = "once"
    if every_node is not None:
        every = reader.choice(every_node, "repeat", "entry.broadcast.every", EVERY) or "once"
    until = _parsed(reader, body, "until", parse_local_date, required=False)
    until_entry = body.get("until")
    if until_entry is not None and every_node is None:
        reader.report(until_entry.key, "'until' only applies to a repeated broadcast; add "
                                       "'every: week' or 'every: month'",
                      "entry.broadcast.until")
    if start is not None and until is not None and until < start and until_entry is not None:
        reader.report(until_entry.value, "'until' is before the first broadcast ('at'); the "
                                         "broadcast would never run", "entry.broadcast.until")
    rate = _parsed(reader, body, "rate", parse_rate, required=False)
    audience_node = reader.optional(body, "audience")
    condition = None
    if audience_node is not None:
        scope = Scope(None, no_event=_AUDIENCE_NO_EVENT, no_enrollment=_BEFORE_ENTRY)
        condition = reader.expression(audience_node, "entry.broadcast.audience", scope)
    if start is None:
        return None
    entry = plan.BroadcastEntry(start, every, until, rate,  # type: ignore[arg-type]
                                condition)
    _warn_past(reader, body, entry, now_ms)
    return entry


def _parsed(reader: NodeReader, body: MappingNode, key: str, parse: Callable[[str], T], *,
            required: bool) -> T | None:
    """The value of `key` read by `parse` (None, reported, when missing or unreadable)."""
    path = f"entry.broadcast.{key}"
    node = (reader.require(body, key, "in entry.broadcast", "entry.broadcast") if required
            else reader.optional(body, key))
    if node is None:
        return None
    scalar = reader.scalar(node, key, path)
    if scalar is None:
        return None
    try:
        return parse(scalar.text)
    except BroadcastFormatError as exc:
        reader.report(node, exc.message, path)
        return None


def _warn_past(reader: NodeReader, body: MappingNode, entry: plan.BroadcastEntry,
               now_ms: int | None) -> None:
    """Warn when every occurrence has passed everywhere (UTC-12 is the last zone)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    listed = occurrences(entry)
    if not listed or listed[-1] + 12 * 3_600_000 >= now:
        return
    key = "until" if entry.every != "once" else "at"
    written = body.get(key)
    where = written.value if written is not None else body
    what = "the last broadcast" if entry.every != "once" else "the broadcast"
    reader.warn((where.line, where.col),
                f"{what} is in the past: a live run sends nothing; a backtest over that time "
                "shows what it would have done", f"entry.broadcast.{key}")


def warn_once_only(reader: NodeReader, entry: plan.BroadcastEntry, top: MappingNode,
                   re_entry: plan.ReEntry) -> None:
    """Warn about a repeated broadcast that re-entry lets reach a customer only once."""
    if entry.every == "once" or re_entry.mode != "never":
        return
    where: Node = top
    for key in ("entry", "broadcast", "every"):
        found = where.get(key) if isinstance(where, MappingNode) else None
        if found is None:
            return
        where = found.value
    reader.warn((where.line, where.col),
                f"a broadcast repeated every {entry.every} reaches each customer once with "
                "re_entry: never (the default); add 're_entry: always' to send every time",
                "entry.broadcast.every")
