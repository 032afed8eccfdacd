"""A customer's timeline: the latest events and message commands the engine kept for them.

The shard processor appends compact entries (`engine.core.timeline`) for the events it applied
and the commands it emitted to a capped list per customer, in the same transaction as the
state (`engine.storage.store.ShardStore.timeline_key`); this module reads that list back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from engine.core.events import Event, EventError, parse_timestamp
from engine.core.timeline import EVENT, MESSAGE, entry_event

SUMMARY_FIELDS = ("venue_id", "amount", "currency", "stars", "voucher_id", "status",
                  "channel", "earned", "spent", "party_size", "zone")
"""Event fields shown in a timeline row, when the event has them."""


@dataclass(frozen=True)
class TimelineEntry:
    """One event applied or one message asked for, at its time (epoch ms)."""

    at: int
    kind: str
    """"event" or "message"."""
    title: str
    """The event type, or "journey@version · step · channel" of a message."""
    detail: str


def read_entries(lines: list[bytes]) -> list[TimelineEntry]:
    """The stored entries, newest first; entries that cannot be read are left out."""
    entries = [entry for entry in map(_entry, lines) if entry is not None]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries


def latest_event(customer_id: str, lines: list[bytes], event_type: str) -> Event | None:
    """The customer's newest stored event of `event_type` (its items by name only)."""
    found: Event | None = None
    for line in lines:
        try:
            event = entry_event(customer_id, orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError, TypeError):
            continue
        if event is not None and event.type == event_type and (
                found is None or event.ts >= found.ts):
            found = event
    return found


def _entry(line: bytes) -> TimelineEntry | None:
    try:
        raw: list[Any] = orjson.loads(line)
        if raw[0] == MESSAGE:
            _, send_at, journey, version, step, channel, template = raw
            return TimelineEntry(parse_timestamp(send_at)[0], "message",
                                 f"{journey}@{version} · {step} · {channel}",
                                 f"template {template}")
        if raw[0] == EVENT:
            _, ts, event_type, _, fields = raw
            detail = ", ".join(f"{name} {fields[name]}" for name in SUMMARY_FIELDS
                               if name in fields)
            if fields.get("items"):
                detail += (", " if detail else "") + "items " + ", ".join(
                    map(str, fields["items"]))
            return TimelineEntry(int(ts), "event", str(event_type), detail)
    except (orjson.JSONDecodeError, EventError, ValueError, TypeError, IndexError, KeyError):
        return None
    return None
