"""The merge rule of two customers, and the transfer record a merged customer's state
travels in from its shard to the survivor's (see engine.flow.identity, docs/identity.md)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, fields

import orjson

from engine.core.presence import merge_presence
from engine.core.profile import RECENT_VISITS_KEPT, RECENT_WINDOW_MS, TOP_COUNTS_KEPT, Profile
from engine.core.runtime import POINTS_EXPIRY
from engine.core.state import SEEN_EVENTS_KEPT, CustomerState


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
                      "tags", "unsubscribed", "distinct_items", "last_booking_at",
                      "presence"))
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
    s.presence = merge_presence(s.presence, m.presence)
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
