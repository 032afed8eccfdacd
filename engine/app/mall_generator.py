"""A seeded event generator for a shopping mall: presence sightings and some purchases.

`generate_mall_events(MallConfig(...))` returns a mall's history in event-time order, up to
and including its last day, the busiest: newcomers, regulars, VIPs and guests who have not
been seen for months all come that day. A guest's stay is a few sightings across the
mall's zones (a wallet pass seen by a sensor at the toilets, a shop entrance, the event
space; a phone on the Wi-Fi at the entrance) and sometimes a purchase at a partner shop
(a `visit`). The same config always gives the same events (one `random.Random(seed)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from engine.app.generator import TS_FORMATS, GeneratorConfigError

Event = dict[str, Any]

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
SENSOR_ZONES = ("toilets", "shop_entrance", "event_space", "food_court")
"""Zones whose sensors read wallet passes."""
_KINDS = (
    # kind, share of guests, wallet pass share, purchase chance a stay, days between stays
    ("newcomer", 0.20, 0.60, 0.30, None),
    ("one_off", 0.15, 0.50, 0.30, None),
    ("occasional", 0.20, 0.55, 0.35, (20, 45)),
    ("regular", 0.25, 0.75, 0.50, (4, 10)),
    ("dormant", 0.15, 0.65, 0.40, None),
    ("vip", 0.05, 0.95, 0.90, (5, 12)),
)
_GOODS = (
    ("denim jacket", "fashion", 79.0), ("sneakers", "fashion", 95.0),
    ("headphones", "electronics", 129.0), ("phone case", "electronics", 19.0),
    ("perfume", "beauty", 64.0), ("lipstick", "beauty", 24.0),
    ("novel", "books", 14.0), ("board game", "toys", 35.0),
)
_LUXURY = (("designer handbag", "fashion", 890.0), ("watch", "jewellery", 1450.0),
           ("cashmere coat", "fashion", 640.0))
_NAMES = ("Olivia", "James", "Amelia", "Oliver", "Isla", "Harry", "Emily", "Noah", "Grace",
          "Leo", "Ava", "Jack")
_SURNAMES = ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright")


@dataclass(frozen=True)
class MallConfig:
    """Size and shape of a generated mall."""

    seed: int = 7
    guests: int = 2000
    days: int = 120
    start: str = "2025-01-01"
    shops: int = 5
    """Partner shops whose tills report purchases."""
    mall: str = "westfield"
    timezone: str = "Europe/London"
    ts_format: str = "iso"

    def __post_init__(self) -> None:
        if self.guests < 0:
            raise GeneratorConfigError(f"customers must be >= 0, got {self.guests}")
        if not 1 <= self.shops <= 999:
            raise GeneratorConfigError(f"venues (shops) must be 1..999, got {self.shops}")
        if self.days < 1:
            raise GeneratorConfigError(f"days must be >= 1, got {self.days}")
        if self.ts_format not in TS_FORMATS:
            raise GeneratorConfigError(
                f"ts_format must be one of {TS_FORMATS}, got {self.ts_format!r}")
        try:
            date.fromisoformat(self.start[:10])
        except ValueError:
            raise GeneratorConfigError(
                f"start must be a date like 2025-01-01, got {self.start!r}") from None


def generate_mall_events(config: MallConfig) -> list[Event]:
    """The mall's events in non-decreasing `ts` order (deterministic for a config)."""
    return _Mall(config).events()


class _Mall:
    def __init__(self, config: MallConfig) -> None:
        self.config = config
        self.rng = Random(config.seed)
        self.zone = ZoneInfo(config.timezone)
        start = date.fromisoformat(config.start[:10])
        self.days = [start + timedelta(days=n) for n in range(config.days)]
        self.pending: list[tuple[int, int, str, str, Event]] = []

    def events(self) -> list[Event]:
        rng = self.rng
        last = len(self.days) - 1
        for number in range(self.config.guests):
            kind, _, pass_share, buy, gaps = _pick_kind(rng.random())
            guest = f"g{number:06d}"
            has_pass = rng.random() < pass_share
            stays = self._stay_days(kind, gaps, last)
            for index, day in enumerate(stays):
                self._stay(guest, kind, day, has_pass, buy, first=index == 0)
        self.pending.sort(key=lambda row: (row[0], row[1]))
        out = []
        for serial, (ms, _, guest, event_type, body) in enumerate(self.pending, 1):
            out.append({"event_id": f"m{serial:09d}", "customer_id": guest, "type": event_type,
                        "ts": self._ts(ms), **body})
        return out

    def _stay_days(self, kind: str, gaps: tuple[int, int] | None, last: int) -> list[int]:
        rng = self.rng
        if kind == "newcomer":
            return [last]
        if kind == "one_off":
            return [rng.randrange(last + 1)]
        if kind == "dormant":  # a few stays early on, months of silence, back on the last day
            early = min(last, max(0, last - 100))
            days = sorted({rng.randint(0, early) for _ in range(rng.randint(1, 3))})
            return [*days, last] if days[-1] != last else days
        assert gaps is not None
        days = []
        day = rng.randint(0, gaps[1])
        while day < last:
            days.append(day)
            day += rng.randint(*gaps)
        if rng.random() < 0.6:  # the mall's big day draws most of them in
            days.append(last)
        return days

    def _stay(self, guest: str, kind: str, day: int, has_pass: bool, buy: float,
              first: bool) -> None:
        rng = self.rng
        d = self.days[day]
        arrive = datetime(d.year, d.month, d.day, 10, tzinfo=self.zone)
        now = int(arrive.timestamp() * 1000) + rng.randrange(10 * 60) * MINUTE_MS
        if first:
            self._add(now - MINUTE_MS, guest, "profile", self._profile(guest))
        mall = self.config.mall
        self._add(now, guest, "presence", {"venue_id": mall, "zone": "entrance",
                                            "source": "wifi"})
        for zone in rng.sample(SENSOR_ZONES, rng.randint(1, 3)):
            now += rng.randint(5, 50) * MINUTE_MS
            source = "wallet_pass" if has_pass else rng.choice(("beacon", "wifi"))
            self._add(now, guest, "presence", {"venue_id": mall, "zone": zone,
                                                "source": source})
        if rng.random() < buy:
            now += rng.randint(5, 40) * MINUTE_MS
            goods = _LUXURY if kind == "vip" and rng.random() < 0.7 else _GOODS
            name, category, price = rng.choice(goods)
            shop = f"{mall}-shop-{rng.randrange(self.config.shops) + 1:03d}"
            self._add(now, guest, "visit", {
                "venue_id": shop, "amount": price, "currency": "EUR", "source": "pos",
                "items": [{"name": name, "category": category, "price": price}]})

    def _profile(self, guest: str) -> Event:
        rng = self.rng
        first, last = rng.choice(_NAMES), rng.choice(_SURNAMES)
        return {"name": f"{first} {last}", "email": f"{first}.{last}.{guest}@example.com"
                .lower(), "timezone": self.config.timezone, "language": "en",
                "consents": {"email": rng.random() < 0.8, "push": rng.random() < 0.85}}

    def _add(self, ms: int, guest: str, event_type: str, body: Event) -> None:
        self.pending.append((ms, len(self.pending), guest, event_type, body))

    def _ts(self, ms: int) -> str | int:
        if self.config.ts_format == "ms":
            return ms
        return datetime.fromtimestamp(ms / 1000, self.zone).isoformat()


def _pick_kind(roll: float) -> tuple[str, float, float, float, tuple[int, int] | None]:
    for row in _KINDS:
        roll -= row[1]
        if roll < 0:
            return row
    return _KINDS[-1]
