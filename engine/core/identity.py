"""Identity resolution: alias events, the identity map and the merge of two customers.

An alias event (`type: "alias"`) says that identifiers (a loyalty card, a phone number, an
email address, a booking platform's id, another customer id) belong to its customer, the
survivor. From then on an event whose `customer_id` is one of them is applied to the
survivor, and a customer the engine already kept under one of them is merged into it.

This module is the pure part: decoding an alias event, the map routers resolve ids with,
the transfer record a merged customer's state travels in, and the merge rule. The shard
processor's side (the two-phase hand-off) is `engine.flow.identity`; docs/identity.md has
the guarantees and their limits.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, fields
from typing import Any, get_args

import orjson

from engine.core.event_types import IdentifierKind
from engine.core.events import MAX_ID_LENGTH, Event, EventError, _identifier, parse_timestamp
from engine.core.profile import RECENT_VISITS_KEPT, RECENT_WINDOW_MS, TOP_COUNTS_KEPT, Profile
from engine.core.runtime import POINTS_EXPIRY
from engine.core.state import SEEN_EVENTS_KEPT, CustomerState

ALIAS = "alias"
"""The event type that links identifiers to a customer."""
HANDOFF = "~handoff"
"""The record the router sends to a merged customer's shard (never in the input: input
types cannot start with ~)."""
IDENTIFIER_KINDS: tuple[str, ...] = get_args(IdentifierKind)
MAX_IDENTIFIERS = 16


# ---------------------------------------------------------------------- decoding
def validate_alias(raw: dict[str, Any], position: int = 0) -> Event:
    """An alias event the typed decoder refused, checked field by field for the reason."""
    event_id = _identifier(raw, "event_id")
    customer_id = _identifier(raw, "customer_id")
    ts, offset = parse_timestamp(raw.get("ts"))
    identifiers = raw.get("identifiers")
    if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
        raise EventError(f"'identifiers' must be a list of 1 to {MAX_IDENTIFIERS} objects "
                         f"such as {{\"kind\": \"phone\", \"value\": \"+4930123456\"}}")
    pairs: list[list[str]] = []
    for index, item in enumerate(identifiers):
        if not isinstance(item, dict):
            raise EventError(f"'identifiers[{index}]' must be an object with 'kind' and "
                             f"'value'")
        kind = item.get("kind")
        if kind not in IDENTIFIER_KINDS:
            raise EventError(f"'identifiers[{index}].kind' must be one of "
                             f"{', '.join(IDENTIFIER_KINDS)}, got {kind!r:.60}")
        value = item.get("value")
        if not isinstance(value, str) or not value:
            raise EventError(f"'identifiers[{index}].value' must be a non-empty string "
                             f"(quote numbers)")
        if len(value) > MAX_ID_LENGTH:
            raise EventError(f"'identifiers[{index}].value' is longer than {MAX_ID_LENGTH} "
                             f"characters")
        pairs.append([kind, value])
    return Event(event_id, customer_id, ALIAS, ts, {"identifiers": pairs}, position, offset)


def finish_alias(data: dict[str, Any]) -> None:
    """The typed decoder's identifiers as [kind, value] pairs, as `validate_alias` gives."""
    data["identifiers"] = [[item.kind, item.value] for item in data["identifiers"]]


# ---------------------------------------------------------------------- the map
class IdentityMap:
    """Identifier -> the customer its events are applied to, kept flat (every key maps to
    a survivor that is itself linked to no one), so resolving an id is one dict lookup.
    Empty until the first link: the router then skips the lookup."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}

    def canonical(self, customer_id: str) -> str:
        return self.links.get(customer_id, customer_id)

    def link(self, identifier: str, survivor: str) -> bool:
        """Link `identifier`, and every id linked to it, to `survivor`'s customer; False
        when they are one customer already, or `identifier` is linked to another one."""
        survivor = self.canonical(survivor)
        if identifier in self.links or identifier == survivor:
            return False
        moved = self._members.pop(identifier, [])
        for member in moved:
            self.links[member] = survivor
        self.links[identifier] = survivor
        self._members.setdefault(survivor, []).extend([*moved, identifier])
        return True


def transfer_id(alias_event_id: str, identifier: str) -> str:
    """The id of the hand-off of `identifier`'s state by an alias event: fixed by its
    inputs, so a replay writes and looks for the same record."""
    return f"{alias_event_id}\x1f{identifier}"


# ---------------------------------------------------------------------- transfer records
@dataclass(frozen=True)
class Transfer:
    """A merged customer's state on its way to the survivor's shard."""

    source: str
    survivor: str
    at: int
    state: CustomerState | None
    """None: the engine kept nothing under the identifier (it is linked, nothing merges)."""
    note: str | None = None
    """Why nothing was handed off (the identifier was linked to another customer)."""


def encode_transfer(source: str, survivor: str, at: int, state: CustomerState | None,
                    note: str | None = None) -> bytes:
    """A header line ([source, survivor, at, note]) and the state's stored form (nothing
    for a customer no event was applied to)."""
    header = orjson.dumps([source, survivor, at, note])
    if state is None or state == CustomerState(state.customer_id):
        return header + b"\n"
    return header + b"\n" + state.to_bytes()


def decode_transfer(record: bytes) -> Transfer:
    header, _, body = record.partition(b"\n")
    source, survivor, at, note = orjson.loads(header)
    state = CustomerState.from_bytes(survivor, body) if body else None
    return Transfer(source, survivor, at, state, note)


# ---------------------------------------------------------------------- the merge rule
_CONTACT = ("name", "email", "phone", "telegram_chat_id", "birthday", "timezone", "language")
_ADDED = ("visit_count", "rating_count", "rating_sum", "points", "points_earned",
          "points_spent", "points_expired", "vouchers_redeemed", "messages_opened",
          "messages_clicked")
_COUNTS = ("item_counts", "category_counts", "daypart_counts", "weekday_counts")
_LAST_VISIT = ("last_visit_at", "last_visit_amount", "last_venue_id", "last_party_size",
               "last_channel", "last_items")
_HANDLED = frozenset((*_CONTACT, *_ADDED, *_COUNTS, *_LAST_VISIT, "consents",
                      "first_visit_at", "first_visit_amount", "recent_visits",
                      "recent_amounts", "total_spend", "last_rating", "last_rating_at",
                      "tags", "unsubscribed", "distinct_items", "last_booking_at"))
_DEFAULTS = Profile()


def merge_profiles(survivor: Profile, merged: Profile) -> None:
    """Fold `merged` into `survivor` (see docs/identity.md for the rule)."""
    s, m = survivor, merged
    for name in _CONTACT:
        if getattr(s, name) is None:
            setattr(s, name, getattr(m, name))
    for name in _ADDED:
        setattr(s, name, getattr(s, name) + getattr(m, name))
    s.total_spend = round(s.total_spend + m.total_spend, 2)
    if m.first_visit_at is not None and (s.first_visit_at is None
                                         or m.first_visit_at < s.first_visit_at):
        s.first_visit_at, s.first_visit_amount = m.first_visit_at, m.first_visit_amount
    if m.last_visit_at is not None and (s.last_visit_at is None
                                        or m.last_visit_at > s.last_visit_at):
        for name in _LAST_VISIT:
            setattr(s, name, getattr(m, name))
    if m.last_rating_at is not None and (s.last_rating_at is None
                                         or m.last_rating_at > s.last_rating_at):
        s.last_rating, s.last_rating_at = m.last_rating, m.last_rating_at
    if m.last_booking_at is not None and (s.last_booking_at is None
                                          or m.last_booking_at > s.last_booking_at):
        s.last_booking_at = m.last_booking_at
    s.recent_visits, s.recent_amounts = _recent(s, m)
    common = len(s.item_counts.keys() & m.item_counts.keys())
    s.distinct_items = max(s.distinct_items, m.distinct_items,
                           s.distinct_items + m.distinct_items - common)
    for name in _COUNTS:
        setattr(s, name, _added_counts(getattr(s, name), getattr(m, name)))
    s.tags = sorted({*s.tags, *m.tags})
    s.unsubscribed = sorted({*s.unsubscribed, *m.unsubscribed})
    consents = {**m.consents, **s.consents}
    for channel in s.unsubscribed:  # a refusal under either identity stands
        consents[channel] = False
    for channel, given in m.consents.items():
        if not given:
            consents[channel] = False
    s.consents = consents
    for field in fields(Profile):  # fields this rule does not know: the survivor's if set
        name = field.name
        if name not in _HANDLED and getattr(s, name) == getattr(_DEFAULTS, name):
            setattr(s, name, getattr(m, name))


def _recent(s: Profile, m: Profile) -> tuple[list[int], list[float]]:
    """Both customers' recent visits in time order, cut as a visit cuts them."""
    pairs = list(zip(s.recent_visits, _amounts(s), strict=True))
    for visit in zip(m.recent_visits, _amounts(m), strict=True):
        bisect.insort_right(pairs, visit, key=lambda pair: pair[0])
    if not pairs:
        return [], []
    cut = len(pairs) - RECENT_VISITS_KEPT
    horizon = pairs[-1][0] - RECENT_WINDOW_MS
    times = [t for t, _ in pairs]
    if times[0] < horizon:
        cut = max(cut, bisect.bisect_left(times, horizon))
    kept = pairs[max(cut, 0):]
    return [t for t, _ in kept], [a for _, a in kept]


def _amounts(profile: Profile) -> list[float]:
    amounts = profile.recent_amounts
    return amounts if len(amounts) == len(profile.recent_visits) \
        else [0.0] * len(profile.recent_visits)


def _added_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Counts added per key, the least frequent dropped past TOP_COUNTS_KEPT as a visit
    drops them (of equal counts, the alphabetically first)."""
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    while len(out) > TOP_COUNTS_KEPT:
        lowest = min(out.values())
        del out[min(k for k, count in out.items() if count == lowest)]
    return out


def merge_states(survivor: CustomerState, merged: CustomerState) -> list[str]:
    """Fold `merged` into `survivor`: the profile (`merge_profiles`), enrollments (the
    survivor's wins per journey, the merged customer's others move over), vouchers (all
    kept), armed time-based entries (the survivor's wins; the points expiry: the later),
    the ids of applied events (the duplicate window of the two) and the sent log. The
    journeys whose active enrollment of the merged customer was dropped, sorted."""
    merge_profiles(survivor.profile, merged.profile)
    dropped = []
    for journey_id, enrollment in merged.enrollments.items():
        if journey_id not in survivor.enrollments:
            survivor.enrollments[journey_id] = enrollment
        elif enrollment.active:
            dropped.append(journey_id)
    for code, voucher in merged.vouchers.items():
        survivor.vouchers.setdefault(code, voucher)
    for key, due in merged.armed.items():
        if key == POINTS_EXPIRY and key in survivor.armed:
            survivor.armed[key] = max(survivor.armed[key], due)
        else:
            survivor.armed.setdefault(key, due)
    seen = {**merged.seen, **survivor.seen}
    floor = max(survivor.seen_floor, merged.seen_floor)
    if len(seen) > SEEN_EVENTS_KEPT:
        floor = max(floor, sorted(seen.values())[-SEEN_EVENTS_KEPT])
    survivor.seen = {key: ts for key, ts in seen.items() if ts >= floor}
    survivor.seen_floor = floor
    survivor.seen_oldest = None
    survivor.sent_log = sorted([*survivor.sent_log, *merged.sent_log], key=lambda e: e[0])
    survivor.scores = survivor.scores_basis = None
    survivor.due_floor = 0
    return sorted(dropped)


def histogram_values(state: CustomerState) -> tuple[float | None, float | None, int | None]:
    """(total spend, average check, visits) the population histograms count the customer
    under; None each before a first visit."""
    profile = state.profile
    if not profile.visit_count:
        return None, None, None
    return profile.total_spend, profile.avg_spend, profile.visit_count
