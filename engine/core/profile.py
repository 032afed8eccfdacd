"""The live profile of one customer and how each event updates it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, fields
from typing import Any

from engine.core.events import Event
from engine.core.presence import record_presence
from engine.core.timeutil import DAY_MS, hour_of, local_ms, weekday_of
from journeys_dsl.fields import WEEKDAYS
from journeys_dsl.plan import DAYPARTS

RECENT_VISITS_KEPT = 120
RECENT_WINDOW_MS = 365 * DAY_MS
TOP_COUNTS_KEPT = 24


def daypart_of(hour: int) -> str:
    """The daypart that contains a local hour."""
    if 0 <= hour < 24:
        return _DAYPART_OF_HOUR[hour]
    return _scan_dayparts(hour)


def _scan_dayparts(hour: int) -> str:
    for name, (start, end) in DAYPARTS.items():
        if start <= hour < end or start <= hour + 24 < end:
            return name
    return "late"


_DAYPART_OF_HOUR = tuple(_scan_dayparts(hour) for hour in range(24))


@dataclass(slots=True)
class Profile:
    """Aggregates of one customer, kept current on every event."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    telegram_chat_id: str | None = None
    birthday: str | None = None
    timezone: str | None = None
    language: str | None = None
    consents: dict[str, bool] = field(default_factory=dict)
    first_visit_at: int | None = None
    first_visit_amount: float | None = None
    last_visit_at: int | None = None
    visit_count: int = 0
    recent_visits: list[int] = field(default_factory=list)
    recent_amounts: list[float] = field(default_factory=list)
    total_spend: float = 0.0
    last_visit_amount: float | None = None
    last_venue_id: str | None = None
    last_party_size: int | None = None
    last_channel: str | None = None
    last_items: list[str] = field(default_factory=list)
    last_rating: int | None = None
    last_rating_at: int | None = None
    rating_count: int = 0
    rating_sum: int = 0
    item_counts: dict[str, int] = field(default_factory=dict)
    category_counts: dict[str, int] = field(default_factory=dict)
    daypart_counts: dict[str, int] = field(default_factory=dict)
    weekday_counts: dict[str, int] = field(default_factory=dict)
    points: int = 0
    points_earned: int = 0
    points_spent: int = 0
    tags: list[str] = field(default_factory=list)
    distinct_items: int = 0
    points_expired: int = 0
    vouchers_redeemed: int = 0
    messages_opened: int = 0
    messages_clicked: int = 0
    unsubscribed: list[str] = field(default_factory=list)
    last_booking_at: int | None = None
    presence: dict[str, Any] | None = None
    """Presence counters (see `engine.core.presence`); None until first seen."""

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from their defaults, to keep state small, in field
        order. Written out field by field: compiled, a named attribute is a direct read,
        where a loop of `getattr` by name costs about four times as much (this runs for
        every state written). tests/unit/test_profile_codec.py holds it to the fields."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.email is not None:
            out["email"] = self.email
        if self.phone is not None:
            out["phone"] = self.phone
        if self.telegram_chat_id is not None:
            out["telegram_chat_id"] = self.telegram_chat_id
        if self.birthday is not None:
            out["birthday"] = self.birthday
        if self.timezone is not None:
            out["timezone"] = self.timezone
        if self.language is not None:
            out["language"] = self.language
        if self.consents:
            out["consents"] = self.consents
        if self.first_visit_at is not None:
            out["first_visit_at"] = self.first_visit_at
        if self.first_visit_amount is not None:
            out["first_visit_amount"] = self.first_visit_amount
        if self.last_visit_at is not None:
            out["last_visit_at"] = self.last_visit_at
        if self.visit_count != 0:
            out["visit_count"] = self.visit_count
        if self.recent_visits:
            out["recent_visits"] = self.recent_visits
        if self.recent_amounts:
            out["recent_amounts"] = self.recent_amounts
        if self.total_spend != 0.0:
            out["total_spend"] = self.total_spend
        if self.last_visit_amount is not None:
            out["last_visit_amount"] = self.last_visit_amount
        if self.last_venue_id is not None:
            out["last_venue_id"] = self.last_venue_id
        if self.last_party_size is not None:
            out["last_party_size"] = self.last_party_size
        if self.last_channel is not None:
            out["last_channel"] = self.last_channel
        if self.last_items:
            out["last_items"] = self.last_items
        if self.last_rating is not None:
            out["last_rating"] = self.last_rating
        if self.last_rating_at is not None:
            out["last_rating_at"] = self.last_rating_at
        if self.rating_count != 0:
            out["rating_count"] = self.rating_count
        if self.rating_sum != 0:
            out["rating_sum"] = self.rating_sum
        if self.item_counts:
            out["item_counts"] = self.item_counts
        if self.category_counts:
            out["category_counts"] = self.category_counts
        if self.daypart_counts:
            out["daypart_counts"] = self.daypart_counts
        if self.weekday_counts:
            out["weekday_counts"] = self.weekday_counts
        if self.points != 0:
            out["points"] = self.points
        if self.points_earned != 0:
            out["points_earned"] = self.points_earned
        if self.points_spent != 0:
            out["points_spent"] = self.points_spent
        if self.tags:
            out["tags"] = self.tags
        if self.distinct_items != 0:
            out["distinct_items"] = self.distinct_items
        if self.points_expired != 0:
            out["points_expired"] = self.points_expired
        if self.vouchers_redeemed != 0:
            out["vouchers_redeemed"] = self.vouchers_redeemed
        if self.messages_opened != 0:
            out["messages_opened"] = self.messages_opened
        if self.messages_clicked != 0:
            out["messages_clicked"] = self.messages_clicked
        if self.unsubscribed:
            out["unsubscribed"] = self.unsubscribed
        if self.last_booking_at is not None:
            out["last_booking_at"] = self.last_booking_at
        if self.presence is not None:
            out["presence"] = self.presence
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """The profile of a stored dict; keys that are not fields are ignored."""
        profile = cls()
        for key, value in data.items():
            name = _FIELD_OF.get(key)  # the interned name: a faster attribute lookup
            if name is not None:
                setattr(profile, name, value)
        return profile

    def visits_within(self, now_ms: int, days: int) -> int:
        """Visits in the `days` days before `now_ms`: (now - days, now]."""
        start = now_ms - days * DAY_MS
        visits = self.recent_visits
        return bisect.bisect_right(visits, now_ms) - bisect.bisect_right(visits, start)

    def spend_within(self, now_ms: int, days: int) -> float:
        """Spend of the visits in the `days` days before `now_ms`: (now - days, now]."""
        start = now_ms - days * DAY_MS
        visits = self.recent_visits
        low, high = bisect.bisect_right(visits, start), bisect.bisect_right(visits, now_ms)
        return round(sum(self.recent_amounts[low:high]), 2)

    @property
    def avg_spend(self) -> float | None:
        return round(self.total_spend / self.visit_count, 2) if self.visit_count else None

    def apply(self, event: Event) -> None:
        """Update the aggregates with one event (vouchers are handled by the runtime)."""
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)

    def _apply_visit(self, event: Event) -> None:
        data = event.data
        ts = event.ts
        amount = float(data["amount"])
        self.visit_count += 1
        self.total_spend = round(self.total_spend + amount, 2)
        if self.first_visit_at is None or ts < self.first_visit_at:
            self.first_visit_at = ts
            self.first_visit_amount = amount
        visits = self.recent_visits
        amounts = self.recent_amounts
        if len(amounts) != len(visits):  # state from before amounts
            amounts = self.recent_amounts = [0.0] * len(visits)
        at = bisect.bisect_right(visits, ts)
        visits.insert(at, ts)
        amounts.insert(at, amount)
        cut = len(visits) - RECENT_VISITS_KEPT
        horizon = visits[-1] - RECENT_WINDOW_MS
        if visits[0] < horizon:
            cut = max(cut, bisect.bisect_left(visits, horizon))
        if cut > 0:
            del visits[:cut]
            del amounts[:cut]
        items = data["items"]
        names = [item["name"] for item in items]
        item_counts = self.item_counts
        category_counts = self.category_counts
        for item, name in zip(items, names, strict=True):
            quantity = int(item.get("quantity") or 1)
            if name not in item_counts:
                self.distinct_items += 1
            _bump(item_counts, name, quantity)
            category = item.get("category")
            if category:
                _bump(category_counts, category, quantity)
        local = local_ms(ts, self.timezone, event.utc_offset_s)
        _bump(self.daypart_counts, daypart_of(hour_of(local)), 1)
        _bump(self.weekday_counts, WEEKDAYS[weekday_of(local)], 1)
        if self.last_visit_at is None or ts >= self.last_visit_at:
            self.last_visit_at = ts
            self.last_visit_amount = amount
            self.last_venue_id = data.get("venue_id")
            self.last_party_size = data.get("party_size")
            self.last_channel = data.get("channel")
            self.last_items = names[:20]

    def _apply_rating(self, event: Event) -> None:
        stars = int(event.data["stars"])
        self.rating_count += 1
        self.rating_sum += stars
        if self.last_rating_at is None or event.ts >= self.last_rating_at:
            self.last_rating = stars
            self.last_rating_at = event.ts

    def _apply_profile(self, event: Event) -> None:
        data = event.data
        for name in ("name", "email", "phone", "telegram_chat_id", "birthday", "timezone",
                     "language"):
            if name in data:
                setattr(self, name, data[name])
        consents = data.get("consents")
        if consents:
            self.consents = {**self.consents, **consents}
            given = {channel for channel, yes in consents.items() if yes}
            if given & set(self.unsubscribed):
                self.unsubscribed = [c for c in self.unsubscribed if c not in given]

    def _apply_message(self, event: Event) -> None:
        status = event.data["status"]
        if status == "opened":
            self.messages_opened += 1
        elif status == "clicked":
            self.messages_clicked += 1
        elif status == "unsubscribed":
            channel = event.data.get("channel") or "email"
            if channel not in self.unsubscribed:
                self.unsubscribed = sorted([*self.unsubscribed, channel])
            self.consents = {**self.consents, channel: False}

    def _apply_points(self, event: Event) -> None:
        amount = int(event.data["amount"])
        kind = event.data["kind"]
        if kind == "earned":
            self.add_points(amount)
        elif kind == "spent":
            self.points -= amount
            self.points_spent += amount
        else:
            self.points = max(0, self.points - amount)

    def _apply_booking(self, event: Event) -> None:
        if self.last_booking_at is None or event.ts > self.last_booking_at:
            self.last_booking_at = event.ts

    def _apply_presence(self, event: Event) -> None:
        """Seen at a venue or zone: presence counters only, never visits or spend."""
        self.presence = record_presence(self.presence, event)

    def add_points(self, amount: int) -> None:
        self.points += amount
        self.points_earned += amount

    def set_tag(self, tag: str, present: bool) -> None:
        if present and tag not in self.tags:
            self.tags = sorted([*self.tags, tag])
        elif not present and tag in self.tags:
            self.tags = [t for t in self.tags if t != tag]


def _bump(counts: dict[str, int], key: str, by: int) -> None:
    counts[key] = counts.get(key, 0) + by
    if len(counts) > TOP_COUNTS_KEPT:
        # the least frequent key; of several, the alphabetically first
        lowest = min(counts.values())
        keys = [k for k, count in counts.items() if count == lowest]
        del counts[keys[0] if len(keys) == 1 else min(keys)]


def top_key(counts: dict[str, int]) -> str | None:
    """The most frequent key; ties go to the alphabetically first, so it is deterministic."""
    best: str | None = None
    highest = 0
    for key, count in counts.items():  # one pass: this runs for most conditions and commands
        if best is None or count > highest or (count == highest and key < best):
            best, highest = key, count
    return best


_HANDLERS = {
    "visit": Profile._apply_visit,
    "rating": Profile._apply_rating,
    "profile": Profile._apply_profile,
    "message": Profile._apply_message,
    "points": Profile._apply_points,
    "booking": Profile._apply_booking,
    "presence": Profile._apply_presence,
}
_FIELD_NAMES = tuple(f.name for f in fields(Profile))
_FIELD_OF = {name: name for name in _FIELD_NAMES}
