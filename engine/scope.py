"""Read-only views that journey expressions evaluate against.

Each view answers `.get(name)` lazily, so a condition pays only for the fields it reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.events import Event
from engine.profile import Profile, top_key
from engine.scoring import DEFAULT_PARAMS, BgNbdParams, profile_p_alive
from engine.state import CustomerState, Enrollment
from engine.timeutil import DAY_MS, iso_date_local


class _View(Mapping[str, Any]):
    """A Mapping whose keys are computed on demand; iteration lists the known names."""

    names: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Any:
        value = self.get(name)
        if value is None and name not in self.names:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class EventView(_View):
    def __init__(self, event: Event) -> None:
        self._event = event

    def get(self, name: str, default: Any = None) -> Any:
        event = self._event
        if name == "item_names":
            return [item["name"] for item in event.data.get("items", ())]
        if name == "categories":
            return sorted({item["category"] for item in event.data.get("items", ())
                           if "category" in item})
        value = event.field(name)
        return default if value is None else value


class CustomerView(_View):
    def __init__(self, state: CustomerState, now: int, params: BgNbdParams) -> None:
        self._state = state
        self._profile = state.profile
        self._now = now
        self._params = params

    def get(self, name: str, default: Any = None) -> Any:
        getter = _CUSTOMER_DERIVED.get(name)
        if getter is not None:
            value = getter(self)
        elif name in _PROFILE_FIELDS:
            value = getattr(self._profile, name)
        else:
            value = None
        return default if value is None else value


def _days_since(view: CustomerView, ts: int | None) -> float | None:
    return None if ts is None else (view._now - ts) / DAY_MS


def _avg_gap(profile: Profile) -> float | None:
    if profile.visit_count < 2 or profile.first_visit_at is None or profile.last_visit_at is None:
        return None
    return (profile.last_visit_at - profile.first_visit_at) / DAY_MS / (profile.visit_count - 1)


_CUSTOMER_DERIVED: dict[str, Any] = {
    "customer_id": lambda v: v._state.customer_id,
    "first_name": lambda v: v._profile.name.split()[0] if v._profile.name else None,
    "visits_30d": lambda v: v._profile.visits_within(v._now, 30),
    "visits_90d": lambda v: v._profile.visits_within(v._now, 90),
    "visits_365d": lambda v: v._profile.visits_within(v._now, 365),
    "days_since_last_visit": lambda v: _days_since(v, v._profile.last_visit_at),
    "days_since_first_visit": lambda v: _days_since(v, v._profile.first_visit_at),
    "avg_gap_days": lambda v: _avg_gap(v._profile),
    "avg_spend": lambda v: (round(v._profile.total_spend / v._profile.visit_count, 2)
                            if v._profile.visit_count else None),
    "avg_rating": lambda v: (v._profile.rating_sum / v._profile.rating_count
                             if v._profile.rating_count else None),
    "favourite_item": lambda v: top_key(v._profile.item_counts),
    "favourite_category": lambda v: top_key(v._profile.category_counts),
    "usual_daypart": lambda v: top_key(v._profile.daypart_counts),
    "usual_weekday": lambda v: top_key(v._profile.weekday_counts),
    "p_alive": lambda v: profile_p_alive(v._profile.visit_count, v._profile.first_visit_at,
                                         v._profile.last_visit_at, v._now, v._params),
}
_PROFILE_FIELDS = frozenset(Profile.__slots__)


class VenueView(_View):
    names = ("venue_id", "avg_amount", "visit_count")

    def __init__(self, venue_id: str | None, stats: list[float] | None) -> None:
        self._venue_id = venue_id
        self._stats = stats

    def get(self, name: str, default: Any = None) -> Any:
        stats = self._stats
        if name == "venue_id":
            value: Any = self._venue_id
        elif name == "visit_count":
            value = int(stats[0]) if stats else None
        elif name == "avg_amount":
            value = round(stats[1] / stats[0], 2) if stats and stats[0] else None
        else:
            value = None
        return default if value is None else value


class OfferView(_View):
    """`offer.<id>.*`: the vouchers issued by the current enrollment."""

    def __init__(self, state: CustomerState, enrollment: Enrollment | None, now: int) -> None:
        self._state = state
        self._enrollment = enrollment
        self._now = now

    def get(self, name: str, default: Any = None) -> Any:
        enrollment = self._enrollment
        code = enrollment.vouchers.get(name) if enrollment is not None else None
        voucher = self._state.vouchers.get(code) if code else None
        if voucher is None:
            return {"issued": False, "redeemed": False, "expired": False}
        tz = self._state.profile.timezone
        return {
            "issued": True,
            "redeemed": voucher.redeemed_at is not None,
            "expired": voucher.redeemed_at is None and self._now > voucher.expires_at,
            "code": code,
            "issued_at": voucher.issued_at,
            "expires_at": voucher.expires_at,
            "expires_on": iso_date_local(voucher.expires_at, tz),
            "redeemed_at": voucher.redeemed_at,
        }


class JourneyView(_View):
    names = ("entered_at", "days_in", "step", "holdout")

    def __init__(self, enrollment: Enrollment | None, step_id: str | None, now: int) -> None:
        self._enrollment = enrollment
        self._step_id = step_id
        self._now = now

    def get(self, name: str, default: Any = None) -> Any:
        enrollment = self._enrollment
        if enrollment is None:
            return default
        value: Any = {
            "entered_at": enrollment.entered_at,
            "days_in": (self._now - enrollment.entered_at) / DAY_MS,
            "step": self._step_id,
            "holdout": enrollment.holdout,
        }.get(name)
        return default if value is None else value


def build_scope(state: CustomerState, now: int, *, event: Event | None = None,
                venue: VenueView | None = None, enrollment: Enrollment | None = None,
                step_id: str | None = None,
                params: BgNbdParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """The names an expression can read at `now`."""
    return {
        "now": now,
        "event": EventView(event) if event is not None else None,
        "customer": CustomerView(state, now, params),
        "venue": venue,
        "offer": OfferView(state, enrollment, now),
        "journey": JourneyView(enrollment, step_id, now),
    }
