"""A customer's presence counters: seen at a venue or zone, with no purchase.

They live in one optional field of the profile (`Profile.presence`, None until the
customer is first seen), so a customer who is never seen stores and costs nothing more.
The short keys keep the stored state small:

| key | what |
|---|---|
| `n` | presence events so far |
| `f`, `l` | the first and the latest sighting (epoch ms) |
| `v`, `z` | the venue and zone of the latest sighting |
| `r` | stays in the past 90 days, oldest first (at most 60); stored as differences |
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from engine.core.events import Event
from engine.core.state_codec import differences, running_sums

DAY_MS = 86_400_000
STAYS_KEPT = 60
STAYS_WINDOW_MS = 90 * DAY_MS
STAY_GAP_MS = 30 * 60_000
"""Sightings closer than this are one stay."""


def record_presence(presence: dict[str, Any] | None, event: Event) -> dict[str, Any]:
    """The counters after one presence event."""
    ts = event.ts
    data = event.data
    if presence is None:
        presence = {"n": 0, "f": ts, "l": ts, "r": []}
    presence["n"] += 1
    if ts < presence["f"]:
        presence["f"] = ts
    if ts >= presence["l"] or "v" not in presence:
        presence["l"] = ts
        presence["v"] = data.get("venue_id")
        zone = data.get("zone")
        if zone is None:
            presence.pop("z", None)
        else:
            presence["z"] = zone
    stays: list[int] = presence["r"]
    at = bisect.bisect_right(stays, ts)
    if (at and ts - stays[at - 1] < STAY_GAP_MS) or (
            at < len(stays) and stays[at] - ts < STAY_GAP_MS):
        return presence  # the same stay, seen again
    stays.insert(at, ts)
    horizon = stays[-1] - STAYS_WINDOW_MS
    cut = max(len(stays) - STAYS_KEPT,
              bisect.bisect_left(stays, horizon) if stays[0] < horizon else 0)
    if cut > 0:
        del stays[:cut]
    return presence


def merge_presence(survivor: dict[str, Any] | None, merged: dict[str, Any] | None
                   ) -> dict[str, Any] | None:
    """Two customers' counters as one guest's (engine.core.merge): sightings added, the
    earlier first sighting, the later latest one with its venue and zone (the survivor's on
    a tie), and the stays of both, one where they are closer than a stay's gap, cut as a
    sighting cuts them."""
    if merged is None:
        return survivor
    if survivor is None:
        return merged
    latest = merged if merged["l"] > survivor["l"] else survivor
    out: dict[str, Any] = {"n": survivor["n"] + merged["n"], "f": min(survivor["f"], merged["f"]),
                           "l": latest["l"]}
    for key in ("v", "z"):
        if key in latest:
            out[key] = latest[key]
    stays: list[int] = []
    for ts in sorted([*survivor["r"], *merged["r"]]):
        if not stays or ts - stays[-1] >= STAY_GAP_MS:
            stays.append(ts)
    if stays:
        horizon = stays[-1] - STAYS_WINDOW_MS
        cut = max(len(stays) - STAYS_KEPT,
                  bisect.bisect_left(stays, horizon) if stays[0] < horizon else 0)
        del stays[:max(cut, 0)]
    out["r"] = stays
    return out


def stays_within(presence: dict[str, Any] | None, now_ms: int, days: int) -> int:
    """Stays in the `days` days before `now_ms`: (now - days, now]."""
    if presence is None:
        return 0
    stays = presence["r"]
    return bisect.bisect_right(stays, now_ms) - bisect.bisect_right(stays, now_ms - days * DAY_MS)


def stored(presence: dict[str, Any]) -> dict[str, Any]:
    """The counters as stored: stay times as differences (a copy)."""
    return {**presence, "r": differences(presence["r"])}


def loaded(presence: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `stored` (in place)."""
    presence["r"] = running_sums(presence.get("r", []))
    return presence


def _days_since(presence: dict[str, Any] | None, key: str, now_ms: int) -> float | None:
    return None if presence is None else (now_ms - presence[key]) / DAY_MS


def _get(key: str, default: Any = None) -> Callable[[dict[str, Any] | None, int], Any]:
    return lambda presence, now: default if presence is None else presence.get(key, default)


CUSTOMER_FIELDS: dict[str, Callable[[dict[str, Any] | None, int], Any]] = {
    "presence_count": _get("n", 0),
    "first_presence_at": _get("f"),
    "last_presence_at": _get("l"),
    "last_presence_venue_id": _get("v"),
    "last_zone": _get("z"),
    "presences_30d": lambda presence, now: stays_within(presence, now, 30),
    "presences_90d": lambda presence, now: stays_within(presence, now, 90),
    "days_since_first_presence": lambda presence, now: _days_since(presence, "f", now),
    "days_since_last_presence": lambda presence, now: _days_since(presence, "l", now),
}
"""`customer.*` fields read from the counters, given the counters and now."""
