"""Declared event types that count as a visit, seen by the profile as visits."""

from __future__ import annotations

from typing import Any

from engine.core.events import Event


def as_visit(event: Event) -> Event:
    """A visit with the event's time, venue and `amount` (0 when it has none), no items."""
    data = event.data
    amount = data.get("amount")
    visit: dict[str, Any] = {"amount": float(amount) if isinstance(amount, int | float) else 0.0,
             "venue_id": data.get("venue_id") or "", "items": []}
    return Event(event.event_id, event.customer_id, "visit", event.ts, visit, event.position,
                 event.utc_offset_s, event.raw, event.at, event.line)
