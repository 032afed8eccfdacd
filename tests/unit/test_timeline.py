"""Timeline entries: what the shard processor writes and the console reads back."""

from __future__ import annotations

import orjson

from engine.console.timeline import latest_event, read_entries
from engine.core.events import validate_event
from engine.core.timeline import event_entry, message_entry

VISIT = {"event_id": "e1", "customer_id": "ann", "type": "visit",
         "ts": "2025-03-03T12:00:00+01:00", "venue_id": "v1", "amount": 41.5,
         "items": [{"name": "steak", "category": "mains", "price": 30.0},
                   {"name": "wine", "category": "drinks", "price": 11.5}]}
RATING = {"event_id": "e2", "customer_id": "ann", "type": "rating",
          "ts": "2025-03-03T13:00:00+01:00", "stars": 5}
COMMAND = {"customer_id": "ann", "journey": "thanks", "version": 2, "step": "thank",
           "channel": "email", "template": "thanks", "send_at": "2025-03-04T08:00:00.000Z"}


def test_an_event_comes_back_with_its_fields_and_item_names() -> None:
    visit = validate_event(VISIT)
    lines = [event_entry(visit), event_entry(validate_event(RATING)), message_entry(COMMAND)]
    back = latest_event("ann", lines, "visit")
    assert back is not None
    assert (back.event_id, back.ts, back.data["amount"], back.data["venue_id"]) == (
        "e1", visit.ts, 41.5, "v1")
    assert [item["name"] for item in back.data["items"]] == ["steak", "wine"]
    assert latest_event("ann", lines, "booking") is None


def test_entries_read_newest_first_and_unreadable_ones_are_left_out() -> None:
    lines = [event_entry(validate_event(VISIT)), message_entry(COMMAND), b"not json",
             orjson.dumps({"event_id": "old"}), orjson.dumps(["e", 1])]
    entries = read_entries(lines)
    assert [(e.kind, e.title) for e in entries] == [
        ("message", "thanks@2 · thank · email"), ("event", "visit")]
    assert entries[1].detail == "venue_id v1, amount 41.5, items steak, wine"
    assert entries[0].detail == "template thanks"
