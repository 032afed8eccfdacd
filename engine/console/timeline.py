"""A customer's timeline: the latest events and message commands the engine kept for them.

The shard processor appends the lines of the events it applied and of the commands it
emitted to a capped list per customer in the same transaction as the state
(`engine.store.ShardStore.timeline_key`); this module reads that list back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from engine.decoding import decode_line
from engine.events import Event, EventError, parse_timestamp

SUMMARY_FIELDS = ("venue_id", "amount", "currency", "stars", "voucher_id", "status",
                  "channel", "earned", "spent", "party_size")
"""Event fields shown in a timeline row, when the event has them."""


@dataclass(frozen=True)
class TimelineEntry:
    """One event applied or one command emitted, at its time (epoch ms)."""

    at: int
    kind: str
    """"event" or "command"."""
    title: str
    """The event type, or "journey · step · channel" of a command."""
    detail: str
    raw: dict[str, Any]


def read_entries(lines: list[bytes]) -> list[TimelineEntry]:
    """The stored lines as entries, newest first; lines that cannot be read are left out."""
    entries = [entry for entry in map(_entry, lines) if entry is not None]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries


def latest_event(lines: list[bytes], event_type: str) -> Event | None:
    """The customer's newest stored event of `event_type`, decoded as the engine does."""
    found: Event | None = None
    for line in lines:
        try:
            event = decode_line(line)
        except EventError:
            continue
        if event.type == event_type and (found is None or event.ts >= found.ts):
            found = event
    return found


def _entry(line: bytes) -> TimelineEntry | None:
    try:
        raw = orjson.loads(line)
        if "command_id" in raw:
            at = parse_timestamp(raw["send_at"])[0]
            title = f"{raw['journey']}@{raw['version']} · {raw['step']} · {raw['channel']}"
            return TimelineEntry(at, "command", title, f"template {raw.get('template')}", raw)
        at = parse_timestamp(raw["ts"])[0]
        detail = ", ".join(f"{name} {raw[name]}" for name in SUMMARY_FIELDS if name in raw)
        items = [item.get("name") for item in raw.get("items", ()) if isinstance(item, dict)]
        if items:
            detail += (", " if detail else "") + "items " + ", ".join(map(str, items))
        return TimelineEntry(at, "event", str(raw["type"]), detail, raw)
    except (orjson.JSONDecodeError, EventError, KeyError, TypeError, AttributeError):
        return None
