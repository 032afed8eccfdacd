"""A seeded, streaming event generator for a restaurant chain.

`generate_events(ChainConfig(...))` yields event dicts in non-decreasing event time. The same
config always yields the same events (one `random.Random(seed)`, no clock reads). Memory stays
proportional to the customers active at a time: each holds a few pending entries in a heap.

Customers mix one-off visitors, occasional guests, regulars who visit weekly and then lapse
for months, loyal weekly or biweekly guests and big-spending VIPs; some first visits are rated
5 stars with above-average spend. Every customer's first event is a `profile`.

Given the responses to the messages of an earlier run (`engine.app.responses`), customers
also come back for those: each response is one extra visit at the home venue, with its own
random stream, so the customers' other visits and everyone else's events stay the same.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, BinaryIO, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import orjson

from engine.app.responses import Response
from engine.errors import JourneysError

Event = dict[str, Any]
T = TypeVar("T")
Responses = Mapping[str, Sequence[Response]]
"""Extra visits that answer messages, by customer id (see `engine.app.responses`)."""

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
TS_FORMATS = ("iso", "ms")
CATEGORIES = ("starters", "mains", "meat", "fish", "vegetarian", "desserts", "drinks")
MAIN_CATEGORIES = ("mains", "meat", "fish", "vegetarian")
SIGNATURE_ITEM = "signature steak"
_BOTTLE = "bottle of reserve wine"
DAYPARTS = ("breakfast", "lunch", "dinner")
_WINDOWS_S = {  # local time of the bill, seconds after midnight
    "breakfast": (7 * 3600 + 30 * 60, 10 * 3600 + 30 * 60),
    "lunch": (11 * 3600 + 30 * 60, 14 * 3600 + 30 * 60),
    "dinner": (18 * 3600, 22 * 3600),
}
_ANCHOR_S = 4 * 3600  # local 04:00: after every European DST switch, before any daypart

# fmt: off
_POOL: dict[str, tuple[tuple[str, float], ...]] = {
    "starters": (
        ("bruschetta", 6.5), ("soup of the day", 5.9), ("burrata", 9.5),
        ("caesar salad", 8.9), ("calamari fritti", 9.9), ("beef carpaccio", 11.5),
    ),
    "mains": (
        ("cheeseburger", 13.9), ("pasta carbonara", 12.5), ("margherita pizza", 10.5),
        ("chicken schnitzel", 15.9), ("club sandwich", 11.0), ("mushroom risotto", 14.5),
    ),
    "meat": (
        (SIGNATURE_ITEM, 29.0), ("lamb chops", 26.0), ("pork belly", 19.5),
        ("beef short rib", 24.0),
    ),
    "fish": (
        ("grilled salmon", 22.0), ("sea bass fillet", 24.5), ("fish and chips", 16.5),
        ("tuna tataki", 21.0),
    ),
    "vegetarian": (
        ("falafel bowl", 12.9), ("vegetable curry", 13.5), ("halloumi burger", 13.9),
        ("spinach gnocchi", 13.0),
    ),
    "desserts": (
        ("tiramisu", 7.0), ("chocolate fondant", 7.9), ("creme brulee", 7.5),
        ("cheesecake", 6.9), ("affogato", 5.5),
    ),
    "drinks": (
        ("espresso", 2.6), ("cappuccino", 3.6), ("fresh lemonade", 4.5), ("craft beer", 5.2),
        ("glass of house wine", 6.5), ("sparkling water", 3.9),
        ("bottle of reserve wine", 38.0),
    ),
}
# zone, language, phone prefix
_REGIONS = (
    ("Europe/Berlin", "de", "+49"), ("Europe/Paris", "fr", "+33"),
    ("Europe/Amsterdam", "en", "+31"), ("Europe/Vienna", "de", "+43"),
    ("Europe/Brussels", "fr", "+32"), ("Europe/Zurich", "de", "+41"),
    ("Europe/Madrid", "en", "+34"), ("Europe/Rome", "en", "+39"),
)
_FIRST = {
    "en": ("Olivia", "James", "Amelia", "Oliver", "Isla", "Harry", "Emily", "Noah", "Grace"),
    "de": ("Lena", "Lukas", "Mia", "Leon", "Hannah", "Finn", "Emma", "Jonas", "Felix"),
    "fr": ("Louise", "Gabriel", "Chloe", "Raphael", "Jade", "Louis", "Alice", "Hugo", "Lina"),
}
_LAST = {
    "en": ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright"),
    "de": ("Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Koch"),
    "fr": ("Martin", "Bernard", "Dubois", "Laurent", "Lefebvre", "Moreau", "Girard", "Roux"),
}
# fmt: on
_LANGUAGES = ("en", "de", "fr")
_DOMAINS = ("example.com", "example.org", "example.net")
_TEXTS = {
    1: ("Cold food and a long wait.", "Very disappointing."),
    2: ("Slow service tonight.", "The food was lukewarm."),
    3: ("Fine, nothing special.", "Good food, noisy room."),
    4: ("Lovely meal, will come back.", "Friendly staff and good food."),
    5: ("Outstanding, the best meal in town!", "Perfect evening, thank you!"),
}
_STAR_DRAWS = (1,) * 4 + (2,) * 6 + (3,) * 15 + (4,) * 35 + (5,) * 40  # stars, by weight
# kind: share of customers, loyalty-member probability, party sizes
_KINDS = (
    ("one_off", 0.45, 0.10, (1, 2, 2, 2, 3, 4)),
    ("occasional", 0.25, 0.35, (1, 2, 2, 2, 3, 4)),
    ("regular", 0.15, 0.60, (1, 1, 2, 2, 3)),
    ("loyal", 0.10, 0.85, (1, 1, 2, 2, 3)),
    ("vip", 0.05, 0.95, (2, 2, 3, 4, 4, 6)),
)
_IMPRESSED_SHARE = 0.10
_EARLY_SHARE = 0.25  # customers already known when the period starts arrive in its first weeks
_EARLY_DAYS = 28.0

# heap actions
_ARRIVE, _VISIT, _EMIT, _RESPOND = 0, 1, 2, 3


class GeneratorConfigError(JourneysError, ValueError):
    """A `ChainConfig` value out of range."""

    code = "generator_config"


@dataclass(frozen=True)
class ChainConfig:
    """Size and shape of a generated venue chain."""

    seed: int = 7
    customers: int = 2000
    venues: int = 5
    days: int = 365
    start: str = "2025-01-01"
    ts_format: str = "iso"

    def __post_init__(self) -> None:
        if self.customers < 0:
            raise GeneratorConfigError(f"customers must be >= 0, got {self.customers}")
        if not 1 <= self.venues <= 999:
            raise GeneratorConfigError(f"venues must be 1..999, got {self.venues}")
        if self.days < 1:
            raise GeneratorConfigError(f"days must be >= 1, got {self.days}")
        if self.ts_format not in TS_FORMATS:
            raise GeneratorConfigError(
                f"ts_format must be one of {TS_FORMATS}, got {self.ts_format!r}"
            )
        try:
            date.fromisoformat(self.start[:10])
        except ValueError:
            raise GeneratorConfigError(
                f"start must be a date like 2025-01-01, got {self.start!r}"
            ) from None


Item = tuple[str, str, float]  # name, category, price


@dataclass(frozen=True, slots=True)
class _Venue:
    venue_id: str
    zone: str
    language: str
    phone_prefix: str
    daypart_weights: tuple[float, float, float]
    dayparts: tuple[str, ...]  # DAYPARTS repeated by weight, for fast weighted draws
    by_category: dict[str, tuple[Item, ...]]
    by_name: dict[str, Item]
    mains: tuple[Item, ...]
    light: tuple[Item, ...]  # breakfast food
    soft_drinks: tuple[Item, ...]  # drinks by the glass or cup
    starters: tuple[Item, ...]
    desserts: tuple[Item, ...]
    bottle: Item | None


@dataclass(slots=True)
class _Customer:
    customer_id: str
    kind: str
    home: _Venue
    daypart: str
    favourite_main: str
    favourite_drink: str
    member: bool
    party_sizes: tuple[int, ...]
    impressed: bool
    profile: dict[str, Any]
    run_left: int = 0
    period: int = 7
    points: int = 0
    visits: int = 0


class _Plan(NamedTuple):
    venue: _Venue
    day: int
    daypart: str
    channel: str
    party_size: int
    source: str
    booked_for_ms: int | None


def generate_events(config: ChainConfig, responses: Responses | None = None) -> Iterator[Event]:
    """Yield the chain's events in non-decreasing `ts` order (deterministic for a config and
    its responses)."""
    return _Simulation(config, responses or {}).run()


def write_jsonl(config: ChainConfig, path: str | Path, responses: Responses | None = None) -> int:
    """Write the events as JSON lines to `path`; return how many were written."""
    with Path(path).open("wb", buffering=1 << 20) as out:
        return write_stream(generate_events(config, responses), out)


def write_stream(events: Iterator[Event], out: BinaryIO) -> int:
    """Write events as JSON lines to a binary stream; return how many were written."""
    count = 0
    dumps = orjson.dumps
    chunk: list[bytes] = []
    for event in events:
        chunk.append(dumps(event))
        count += 1
        if len(chunk) >= 4096:
            out.write(b"\n".join(chunk) + b"\n")
            chunk.clear()
    if chunk:
        out.write(b"\n".join(chunk) + b"\n")
    return count


def _build_venues(rng: Random, count: int) -> list[_Venue]:
    venues = []
    width = max(2, len(str(count)))
    for index in range(count):
        zone, language, prefix = _REGIONS[index % len(_REGIONS)]
        level = rng.uniform(0.9, 1.2)
        chosen: list[tuple[str, str, float]] = [("meat", SIGNATURE_ITEM, 29.0)]
        for category in CATEGORIES:
            options = [entry for entry in _POOL[category] if entry[0] != SIGNATURE_ITEM]
            options = [entry for entry in options if entry[1] < 30]
            name, price = rng.choice(options)
            chosen.append((category, name, price))
        rest = [
            (category, name, price)
            for category in CATEGORIES
            for name, price in _POOL[category]
            if all(name != taken for _, taken, _ in chosen)
        ]
        chosen += rng.sample(rest, rng.randint(0, 12 - len(chosen)))
        items = tuple((name, category, _price(price, level)) for category, name, price in chosen)
        drinks = tuple(i for i in items if i[1] == "drinks")
        by_category = {c: tuple(i for i in items if i[1] == c) for c in CATEGORIES}
        breakfast = rng.uniform(0.0, 0.2)
        lunch = rng.uniform(0.3, 0.5)
        weights = (breakfast, lunch, 1.0 - breakfast - lunch)
        venues.append(
            _Venue(
                venue_id=f"v{index + 1:0{width}d}",
                zone=zone,
                language=language,
                phone_prefix=prefix,
                daypart_weights=weights,
                dayparts=tuple(
                    part
                    for part, w in zip(DAYPARTS, weights, strict=True)
                    for _ in range(round(w * 100))
                ),
                by_category=by_category,
                by_name={item[0]: item for item in items},
                mains=tuple(i for i in items if i[1] in MAIN_CATEGORIES),
                light=tuple(i for i in items if i[1] in ("starters", "desserts", "vegetarian")),
                soft_drinks=tuple(i for i in drinks if i[0] != _BOTTLE),
                starters=by_category["starters"],
                desserts=by_category["desserts"],
                bottle=next((i for i in drinks if i[0] == _BOTTLE), None),
            )
        )
    return venues


def _price(base: float, level: float) -> float:
    """Menu price at a venue's price level, ending in .x0 or .x9 like a real menu."""
    scaled = round(base * level, 1)
    return round(scaled - 0.1, 2) if scaled >= 6 else scaled


class _Simulation:
    """One run of the generator: the random stream, the event heap and the clock helpers."""

    def __init__(self, config: ChainConfig, responses: Responses) -> None:
        self.config = config
        self.rng = Random(config.seed)
        self.responses = responses
        self.start_date = date.fromisoformat(config.start[:10])
        self.venues = _build_venues(self.rng, config.venues)
        self.zones = {venue.zone: ZoneInfo(venue.zone) for venue in self.venues}
        self.anchors: dict[tuple[str, int], int] = {}
        self.hours: dict[str, dict[int, tuple[str, str] | None]] = {z: {} for z in self.zones}
        self.heap: list[tuple[int, int, int, Any, Any]] = []
        self.seq = 0
        self.emitted = 0
        zone0 = self.venues[0].zone
        self.end_ms = self._anchor(zone0, config.days) - _ANCHOR_S * 1000
        self.arrived = 0
        self.arrival_x = 0.0
        self.iso = config.ts_format == "iso"

    # -- clock ---------------------------------------------------------------------------

    def _anchor(self, zone: str, day: int) -> int:
        """Epoch ms of local 04:00 on `day` (days after start) in `zone`."""
        key = (zone, day)
        cached = self.anchors.get(key)
        if cached is None:
            d = self.start_date + timedelta(days=day)
            moment = datetime(d.year, d.month, d.day, 4, tzinfo=self.zones[zone])
            cached = int(moment.timestamp()) * 1000
            self.anchors[key] = cached
        return cached

    def _local_ms(self, zone: str, day: int, seconds: int) -> int:
        return self._anchor(zone, day) + (seconds - _ANCHOR_S) * 1000

    def _ts(self, ms: int, zone: str) -> str | int:
        return self._iso(ms, zone) if self.iso else ms

    def _iso(self, ms: int, zone: str) -> str:
        """ISO-8601 local time with offset, from a per-zone cache of UTC hours."""
        secs = ms // 1000
        hours = self.hours[zone]
        try:
            hour = hours[secs // 3600]
        except KeyError:
            hour = hours[secs // 3600] = self._hour(zone, secs // 3600)
        if hour is None:  # an offset that is not whole hours: no cache
            return datetime.fromtimestamp(secs, self.zones[zone]).isoformat()
        rest = secs % 3600
        return f"{hour[0]}{rest // 60:02d}:{rest % 60:02d}{hour[1]}"

    def _hour(self, zone: str, utc_hour: int) -> tuple[str, str] | None:
        """("YYYY-MM-DDTHH:", "+01:00") for one UTC hour in `zone`; None for odd offsets."""
        moment = datetime.fromtimestamp(utc_hour * 3600, self.zones[zone])
        text = moment.isoformat()  # 2025-01-01T13:00:00+01:00
        if moment.minute or moment.second:
            return None
        return text[:14], text[19:]

    # -- heap ----------------------------------------------------------------------------

    def _push(self, ts_ms: int, action: int, subject: Any, payload: Any) -> None:
        if ts_ms < self.end_ms:
            self.seq += 1
            heapq.heappush(self.heap, (ts_ms, self.seq, action, subject, payload))

    def _event(self, customer_id: str, kind: str, ts: str | int, body: Event) -> Event:
        self.emitted += 1
        return {
            "event_id": f"e{self.emitted:09d}",
            "customer_id": customer_id,
            "type": kind,
            "ts": ts,
            **body,
        }

    def run(self) -> Iterator[Event]:
        self._push_next_arrival()
        heap = self.heap
        while heap:
            ts_ms, _, action, subject, payload = heapq.heappop(heap)
            if action == _EMIT:
                customer_id, kind, zone, body = payload
                yield self._event(customer_id, kind, self._ts(ts_ms, zone), body)
            elif action == _VISIT:
                yield from self._visit(subject, payload, ts_ms)
            elif action == _RESPOND:
                yield from self._response_visit(subject, payload, ts_ms)
            else:
                self._arrive(payload, ts_ms)

    # -- arrivals ------------------------------------------------------------------------

    def _push_next_arrival(self) -> None:
        """Arrival days are sorted uniforms drawn one at a time (no list of all customers)."""
        total = self.config.customers
        if self.arrived >= total:
            return
        remaining = total - self.arrived
        x = self.arrival_x
        x += (1.0 - x) * (1.0 - self.rng.random() ** (1.0 / remaining))
        self.arrival_x = x
        horizon = self.config.days * 0.95
        early = min(_EARLY_DAYS, horizon)
        slope = _EARLY_SHARE / early + (1 - _EARLY_SHARE) / horizon
        t = x / slope if x / slope <= early else (x - _EARLY_SHARE) * horizon / (1 - _EARLY_SHARE)
        day = min(int(t), self.config.days - 1)
        self.arrived += 1
        ts = self._anchor(self.venues[0].zone, day) - _ANCHOR_S * 1000
        self.seq += 1
        heapq.heappush(self.heap, (ts, self.seq, _ARRIVE, None, day))

    def _arrive(self, day: int, now_ms: int) -> None:
        rng = self.rng
        number = self.arrived  # arrivals are pushed one at a time: this is the one popped
        self._push_next_arrival()
        kind, _, member_p, parties = _kind_for(rng.random())
        home = self.venues[rng.randrange(len(self.venues))]
        favourite = SIGNATURE_ITEM if rng.random() < 0.2 else rng.choice(home.mains)[0]
        customer = _Customer(
            customer_id=f"c{number:06d}",
            kind=kind,
            home=home,
            daypart=_choose(rng, home.dayparts),
            favourite_main=favourite,
            favourite_drink=rng.choice(home.soft_drinks)[0],
            member=rng.random() < member_p,
            party_sizes=parties,
            impressed=rng.random() < _IMPRESSED_SHARE,
            profile=self._new_profile(number, home),
        )
        if kind == "occasional":
            customer.run_left = rng.randint(1, 5)
        elif kind == "regular":
            customer.run_left = rng.randint(3, 11)
        elif kind == "loyal":
            customer.period = 7 if rng.random() < 0.6 else 14
        first_ms = self._schedule(customer, day, now_ms)
        if first_ms is not None:
            profile_ms = max(now_ms, first_ms - rng.randint(1, 20) * MINUTE_MS)
            self._push_profile(customer, profile_ms)
        for response in self.responses.get(customer.customer_id, ()):
            self._schedule_response(customer, response)

    def _new_profile(self, number: int, home: _Venue) -> dict[str, Any]:
        rng = self.rng
        language = home.language if rng.random() < 0.75 else rng.choice(_LANGUAGES)
        first, last = rng.choice(_FIRST[language]), rng.choice(_LAST[language])
        year = rng.randint(1950, 2006)
        birthday = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        return {
            "name": f"{first} {last}",
            "email": f"{first}.{last}.{number}@{rng.choice(_DOMAINS)}".lower(),
            "phone": f"{home.phone_prefix}{rng.randrange(10**9, 10**10)}",
            "birthday": birthday.isoformat(),
            "timezone": home.zone,
            "language": language,
            "consents": {
                "email": rng.random() < 0.7,
                "sms": rng.random() < 0.3,
                "whatsapp": rng.random() < 0.25,
                "push": rng.random() < 0.35,
            },
        }

    def _push_profile(self, customer: _Customer, ts_ms: int) -> None:
        profile = customer.profile
        body = {**profile, "consents": dict(profile["consents"])}
        payload = (customer.customer_id, "profile", customer.home.zone, body)
        self._push(ts_ms, _EMIT, None, payload)

    def _change_profile(self, customer: _Customer, ts_ms: int) -> None:
        rng = self.rng
        profile = customer.profile
        roll = rng.random()
        if roll < 0.6:
            consents = profile["consents"]
            channel = rng.choice(tuple(consents))
            consents[channel] = not consents[channel]
        elif roll < 0.75:
            local, _, _ = profile["email"].partition("@")
            profile["email"] = f"{local}.{rng.randrange(100)}@{rng.choice(_DOMAINS)}"
        elif roll < 0.9:
            profile["phone"] = f"{customer.home.phone_prefix}{rng.randrange(10**9, 10**10)}"
        else:
            others = [language for language in _LANGUAGES if language != profile["language"]]
            profile["language"] = rng.choice(others)
        self._push_profile(customer, ts_ms)

    # -- visits --------------------------------------------------------------------------

    def _plan(self, customer: _Customer, day: int) -> _Plan:
        rng = self.rng
        first = customer.visits == 0
        venue = customer.home
        if not first and rng.random() < 0.2:
            venue = _choose(rng, self.venues)
        daypart = customer.daypart if rng.random() < 0.75 else _choose(rng, venue.dayparts)
        impressed = first and customer.impressed
        if impressed and daypart == "breakfast":
            daypart = "dinner"
        roll = rng.random()
        if impressed or customer.kind == "vip":
            channel = "dine-in"
        elif daypart == "breakfast":
            channel = "dine-in" if roll < 0.7 else "takeaway"
        else:
            channel = "dine-in" if roll < 0.7 else "takeaway" if roll < 0.88 else "delivery"
        if channel == "dine-in":
            party_size = _choose(rng, customer.party_sizes)
            if impressed:
                party_size = max(2, party_size)
        else:
            party_size = 1 if rng.random() < 0.6 else 2
        booked_for_ms = None
        book_p = {"breakfast": 0.03, "lunch": 0.12, "dinner": 0.35}[daypart]
        if customer.kind == "vip":
            book_p *= 2
        if channel == "dine-in" and rng.random() < book_p:
            lo, hi = _WINDOWS_S[daypart]
            seat_s = lo + 900 * _between(rng, 0, (hi - lo - 4500) // 900)
            booked_for_ms = self._local_ms(venue.zone, day, seat_s)
            source = "booking_platform" if rng.random() < 0.8 else "app"
        elif channel == "delivery":
            source = "app"
        elif channel == "takeaway":
            source = "app" if rng.random() < 0.3 else "pos"
        else:
            source = "pos" if rng.random() < 0.93 else "app"
        return _Plan(venue, day, daypart, channel, party_size, source, booked_for_ms)

    def _schedule(self, customer: _Customer, day: int, now_ms: int) -> int | None:
        """Plan a visit on `day` (and its booking); return the first scheduled ts."""
        if day >= self.config.days:
            return None
        rng = self.rng
        plan = self._plan(customer, day)
        venue = plan.venue
        first_ms: int | None = None
        if plan.booked_for_ms is not None:
            booked_for = plan.booked_for_ms
            visit_ms = booked_for + _between(rng, 45, 75) * MINUTE_MS + _between(rng, 0, 59) * 1000
            lead_ms = _between(rng, 30, 360 if customer.visits == 0 else 14_400) * MINUTE_MS
            booking_ms = max(booked_for - lead_ms, now_ms + _between(rng, 1, 30) * MINUTE_MS)
            booking_ms = min(booking_ms, booked_for - 10 * MINUTE_MS)
            body = {
                "venue_id": venue.venue_id,
                "party_size": plan.party_size,
                "booked_for": self._iso(booked_for, venue.zone),
                "source": plan.source,
            }
            self._push(booking_ms, _EMIT, None, (customer.customer_id, "booking", venue.zone, body))
            first_ms = booking_ms
        else:
            lo, hi = _WINDOWS_S[plan.daypart]
            visit_ms = self._local_ms(venue.zone, day, _between(rng, lo + 1800, hi))
        self._push(visit_ms, _VISIT, customer, plan)
        return visit_ms if first_ms is None else first_ms

    def _next_gap(self, customer: _Customer) -> int | None:
        """Days until the customer's next visit, or None when they do not come back."""
        rng = self.rng
        kind = customer.kind
        if kind == "one_off":
            return None
        if kind == "occasional":
            if customer.run_left <= 0:
                return None
            customer.run_left -= 1
            return 10 + int(rng.expovariate(1 / 40))
        if kind == "regular":
            if customer.run_left > 0:
                customer.run_left -= 1
                return _between(rng, 5, 9)
            if rng.random() < 0.4:
                return None
            customer.run_left = _between(rng, 3, 9)
            return _between(rng, 46, 150)
        if kind == "loyal":
            gap = customer.period + _between(rng, -2, 2)
            return gap + _between(rng, 10, 25) if rng.random() < 0.04 else gap
        return max(2, round(rng.gauss(8, 3)))

    def _visit(self, customer: _Customer, plan: _Plan, ts_ms: int) -> Iterator[Event]:
        rng = self.rng
        first = customer.visits == 0
        customer.visits += 1
        impressed = first and customer.impressed
        items, amount = self._order(customer, plan, impressed)
        cid, venue = customer.customer_id, plan.venue
        ts = self._ts(ts_ms, venue.zone)
        body: Event = {
            "venue_id": venue.venue_id,
            "amount": amount,
            "currency": "EUR",
            "items": items,
            "party_size": plan.party_size,
            "channel": plan.channel,
            "source": plan.source,
        }
        yield self._event(cid, "visit", ts, body)
        if customer.member:
            earned = int(amount)
            if earned > 0:
                customer.points += earned
                body = {"kind": "earned", "amount": earned}
                yield self._event(cid, "points", ts, body)
            if customer.points >= 100 and rng.random() < 0.2:
                spent = 50 * _between(rng, 1, customer.points // 50)
                customer.points -= spent
                body = {"kind": "spent", "amount": spent}
                yield self._event(cid, "points", ts, body)
        if rng.random() < (1.0 if impressed else 0.35 if first else 0.2):
            stars = 5 if impressed else _choose(rng, _STAR_DRAWS)
            body = {"stars": stars, "venue_id": venue.venue_id}
            if rng.random() < 0.4:
                body["text"] = rng.choice(_TEXTS[stars])
            rating_ms = ts_ms + _between(rng, 10, 120) * MINUTE_MS
            self._push(rating_ms, _EMIT, None, (cid, "rating", venue.zone, body))
        if rng.random() < 0.04:
            self._change_profile(customer, ts_ms + _between(rng, 1, 96) * HOUR_MS)
        gap = self._next_gap(customer)
        if gap is not None:
            self._schedule(customer, plan.day + gap, ts_ms)

    # -- responses to messages ----------------------------------------------------------

    def _schedule_response(self, customer: _Customer, response: Response) -> None:
        """Push the visit that answers a message, in the daypart its voucher allows."""
        rng = Random(f"{self.config.seed}:{response.command_id}")
        zone = customer.home.zone
        dayparts = response.dayparts or (customer.daypart,)
        daypart = dayparts[int(rng.random() * len(dayparts))]
        if daypart not in _WINDOWS_S:
            daypart = customer.daypart
        lo, hi = _WINDOWS_S[daypart]
        seconds = _between(rng, lo + 1800, hi)
        day = max(0, (response.visit_after_ms - self._anchor(zone, 0)) // DAY_MS)
        visit_ms = self._local_ms(zone, day, seconds)
        while visit_ms < response.visit_after_ms:
            day += 1
            visit_ms = self._local_ms(zone, day, seconds)
        if day >= self.config.days or visit_ms >= self.end_ms:
            return
        redeem = response.voucher is not None and (
            response.deadline_ms is None or visit_ms <= response.deadline_ms)
        plan = _Plan(customer.home, day, daypart, "dine-in",
                     _choose(rng, customer.party_sizes), "pos", None)
        self._push(visit_ms, _RESPOND, customer, (plan, response.voucher if redeem else None,
                                                  rng))

    def _response_visit(self, customer: _Customer, payload: tuple[_Plan, str | None, Random],
                        ts_ms: int) -> Iterator[Event]:
        """A visit that answers a message: the bill, the voucher, points and perhaps a rating.

        It draws from its own random stream and leaves the points balance that drives the
        customer's later spending draws as it was, so no other event changes."""
        plan, voucher, rng = payload
        if customer.visits == 0:  # a message before the first visit: it would move `first`
            return
        customer.visits += 1
        items, amount = self._order(customer, plan, False, rng)
        cid, venue = customer.customer_id, plan.venue
        ts = self._ts(ts_ms, venue.zone)
        yield self._event(cid, "visit", ts, {
            "venue_id": venue.venue_id, "amount": amount, "currency": "EUR", "items": items,
            "party_size": plan.party_size, "channel": plan.channel, "source": plan.source,
        })
        if voucher is not None:
            yield self._event(cid, "voucher_redeemed", ts,
                              {"voucher_id": voucher, "venue_id": venue.venue_id})
        if customer.member and int(amount) > 0:
            yield self._event(cid, "points", ts, {"kind": "earned", "amount": int(amount)})
        if rng.random() < 0.2:
            stars = _choose(rng, _STAR_DRAWS)
            rating_ms = ts_ms + _between(rng, 10, 120) * MINUTE_MS
            self._push(rating_ms, _EMIT, None,
                       (cid, "rating", venue.zone, {"stars": stars, "venue_id": venue.venue_id}))

    def _order(
        self, customer: _Customer, plan: _Plan, impressed: bool, rng: Random | None = None
    ) -> tuple[list[dict[str, Any]], float]:
        """Items of a bill (favourites likely; VIPs and impressed newcomers order more)."""
        rng = rng or self.rng
        random = rng.random
        venue = plan.venue
        rich = impressed or customer.kind == "vip"
        pick = _pick_rich if rich else _pick
        chosen: list[Item] = []
        add = chosen.append
        if plan.daypart == "breakfast":
            for _ in range(plan.party_size):
                add(pick(random, venue.soft_drinks))
                if random() < 0.8:
                    add(pick(random, venue.light))
        else:
            dinner = plan.daypart == "dinner"
            starter_p = 1.0 if impressed else (0.45 if dinner else 0.25) + (0.25 if rich else 0)
            dessert_p = 1.0 if impressed else (0.35 if dinner else 0.2) + (0.25 if rich else 0)
            favourite = venue.by_name.get(customer.favourite_main)
            drink = venue.by_name.get(customer.favourite_drink)
            fav_p = 0.4 if customer.kind in ("one_off", "occasional") else 0.65
            for _ in range(plan.party_size):
                if favourite is not None and random() < fav_p:
                    add(favourite)
                else:
                    add(pick(random, venue.mains))
                if random() < 0.85:
                    if drink is not None and random() < 0.5:
                        add(drink)
                    else:
                        add(pick(random, venue.soft_drinks))
                if random() < starter_p:
                    add(pick(random, venue.starters))
                if random() < dessert_p:
                    add(pick(random, venue.desserts))
            if rich and dinner and venue.bottle is not None and random() < 0.5:
                add(venue.bottle)
        lines: dict[Item, dict[str, Any]] = {}
        total = 0.0
        for item in chosen:
            total += item[2]
            line = lines.get(item)
            if line is None:
                name, category, price = item
                lines[item] = {"name": name, "category": category, "price": price, "quantity": 1}
            else:
                line["quantity"] += 1
        return list(lines.values()), round(total, 2)


def _between(rng: Random, low: int, high: int) -> int:
    """A uniform integer in [low, high] (faster than Random.randint)."""
    return low + int(rng.random() * (high - low + 1))


def _choose(rng: Random, options: Sequence[T]) -> T:
    """A uniform element of a non-empty sequence (faster than Random.choice)."""
    return options[int(rng.random() * len(options))]


def _kind_for(roll: float) -> tuple[str, float, float, tuple[int, ...]]:
    """The customer kind at cumulative share `roll` (0 <= roll < 1)."""
    for entry in _KINDS:
        roll -= entry[1]
        if roll < 0:
            return entry
    return _KINDS[-1]


def _pick(random: Callable[[], float], items: tuple[Item, ...]) -> Item:
    """A uniform random item."""
    return items[int(random() * len(items))]


def _pick_rich(random: Callable[[], float], items: tuple[Item, ...]) -> Item:
    """The pricier of two random items."""
    item, other = items[int(random() * len(items))], items[int(random() * len(items))]
    return other if other[2] > item[2] else item


if __name__ == "__main__":
    from engine.app.generator_cli import main

    raise SystemExit(main())
