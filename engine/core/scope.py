"""Read-only views that journey expressions evaluate against.

Each view answers `.get(name)` lazily, so a condition pays only for the fields it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from engine.core.aggregates import (
    CHECK_HISTOGRAM,
    SPEND_HISTOGRAM,
    VISITS_HISTOGRAM,
    Aggregates,
    venue_histogram,
)
from engine.core.baskets import recommended_items
from engine.core.events import Event
from engine.core.presence import CUSTOMER_FIELDS as PRESENCE_FIELDS
from engine.core.profile import Profile, daypart_of, top_key
from engine.core.state import CustomerState, Enrollment
from engine.core.timeutil import DAY_MS, iso_date_local, local_hour, utc_day_start
from engine.scoring.customer_scores import score_state
from engine.scoring.model import DEFAULT_MODEL, ScoreModel
from journeys_dsl.expressions import register_view
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel, LoyaltyTier, SegmentRule


class _View(Mapping[str, Any]):
    """A Mapping whose keys are computed on demand; iteration lists the known names."""

    __slots__ = ()
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
    __slots__ = ("_event", "_timezone")

    def __init__(self, event: Event, timezone: str | None) -> None:
        self._event = event
        self._timezone = timezone

    def get(self, name: str, default: Any = None) -> Any:
        event = self._event
        if name == "daypart":
            return daypart_of(local_hour(event.ts, self._timezone, event.utc_offset_s))
        if name == "item_names":
            return [item["name"] for item in event.data.get("items", ())]
        if name == "categories":
            return sorted({item["category"] for item in event.data.get("items", ())
                           if "category" in item})
        value = event.field(name)
        return default if value is None else value


@dataclass
class ScopeContext:
    """What a shard knows beyond one customer: population aggregates and the models."""

    aggregates: Aggregates
    """What conditions read: the chain's aggregates as of the start of the day."""
    customer_model: CustomerModel = EMPTY_MODEL
    score_model: ScoreModel = DEFAULT_MODEL
    own: Aggregates | None = None
    """Where the shard's visits are counted; None: into `aggregates` itself."""
    _venues: dict[str | None, VenueView] = field(default_factory=dict, init=False, repr=False,
                                                 compare=False)

    @property
    def counts(self) -> Aggregates:
        """The aggregates visits are recorded in."""
        return self.own if self.own is not None else self.aggregates

    def venue(self, venue_id: str | None) -> VenueView:
        """The view of one venue in `aggregates`, made once and shared by the scopes."""
        view = self._venues.get(venue_id)
        if view is None or view._aggregates is not self.aggregates:
            view = self._venues[venue_id] = VenueView(venue_id, self.aggregates)
        return view


class CustomerView(_View):
    __slots__ = ("_cache", "_context", "_now", "_profile", "_state")

    def __init__(self, state: CustomerState, now: int, context: ScopeContext) -> None:
        self._state = state
        self._profile = state.profile
        self._now = now
        self._context = context
        self._cache: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        getter = _CUSTOMER_FIELDS.get(name)
        if getter is None:
            return default
        value = getter(self)
        return default if value is None else value

    @classmethod
    def field_getter(cls, name: str) -> Callable[[CustomerView], Any]:
        """A function of a view that gives `view.get(name)`."""
        return _CUSTOMER_FIELDS.get(name, _no_field)

    def _score(self, name: str) -> float | None:
        """A score as of the start of the day (or of a visit that day, whichever is later),
        computed at the first read and again after a visit."""
        state, profile = self._state, self._profile
        day = utc_day_start(self._now)
        if state.scores_basis != (profile.visit_count, profile.total_spend, day):
            score_state(state, day, self._context.score_model)
        scores = state.scores
        return scores.get(name) if scores is not None else None

    def _first_match(self, key: str, rules: Sequence[SegmentRule] | Sequence[LoyaltyTier]
                     ) -> str | None:
        cache = self._cache
        found: str | None
        if key in cache:
            found = cache[key]
            return found
        found = None
        scope = {"now": self._now, "customer": self}
        for rule in rules:
            if rule.condition is None or rule.condition.test(scope):
                found = rule_id(rule)
                break
        cache[key] = found
        return found

    def recommended_items(self) -> list[str]:
        """Items often bought with the customer's favourites (engine.core.baskets),
        computed at the first read."""
        cache = self._cache
        found: list[str] | None = cache.get("recommended_items")
        if found is None:
            found = cache["recommended_items"] = recommended_items(
                self._context.aggregates, self._profile.item_counts, self._now)
        return list(found)

    def recommended_item(self) -> str | None:
        found = self.recommended_items()
        return found[0] if found else None

    def segment(self) -> str | None:
        return self._first_match("segment", self._context.customer_model.activity)

    def check_tier(self) -> str | None:
        return self._first_match("check_tier", self._context.customer_model.check_tier)

    def loyalty_tier(self) -> str | None:
        return self._first_match("loyalty_tier", self._context.customer_model.tiers)

    def segments(self) -> SegmentSet:
        return SegmentSet(self)

    def in_segment(self, segment_id: str) -> bool:
        """Whether the customer is in one segment, evaluating only that segment's rule."""
        model = self._context.customer_model
        kind = model.kinds.get(segment_id)
        if kind == "activity":
            return self.segment() == segment_id
        if kind == "check_tier":
            return self.check_tier() == segment_id
        key = "segment:" + segment_id
        cache = self._cache
        if key not in cache:
            rule = model.segment_rule(segment_id)
            cache[key] = rule is not None and (
                rule.condition is None
                or rule.condition.test({"now": self._now, "customer": self}))
        return bool(cache[key])

    def segment_list(self) -> list[str]:
        found = [s for s in (self.segment(), self.check_tier()) if s is not None]
        found.extend(rule.segment_id for rule in self._context.customer_model.segments
                     if self.in_segment(rule.segment_id))
        return found


class SegmentSet(_View):
    """`customer.segments`: `"vip" in customer.segments` evaluates the vip rule alone."""

    __slots__ = ("_customer",)

    def __init__(self, customer: CustomerView) -> None:
        self._customer = customer

    def get(self, name: str, default: Any = None) -> Any:
        return True if self._customer.in_segment(name) else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._customer.segment_list())

    def __len__(self) -> int:
        return len(self._customer.segment_list())


def rule_id(rule: SegmentRule | LoyaltyTier) -> str:
    return rule.segment_id if isinstance(rule, SegmentRule) else rule.tier_id


def _days_since(view: CustomerView, ts: int | None) -> float | None:
    return None if ts is None else (view._now - ts) / DAY_MS


RECENCY_DAYS = (7, 30, 90, 180)
"""Days since the last visit up to which the recency score is 5, 4, 3 and 2 (else 1)."""


def _recency_score(days: float | None) -> int | None:
    if days is None:
        return None
    return 5 - sum(days > limit for limit in RECENCY_DAYS)


def _quintile(percentile: float | None) -> int | None:
    """1 to 5 from a percentile: the bottom fifth scores 1, the top fifth 5."""
    return None if percentile is None else min(5, 1 + int(percentile // 20))


def _avg_gap(profile: Profile) -> float | None:
    if profile.visit_count < 2 or profile.first_visit_at is None or profile.last_visit_at is None:
        return None
    return (profile.last_visit_at - profile.first_visit_at) / DAY_MS / (profile.visit_count - 1)


def _presence_getter(read: Callable[[dict[str, Any] | None, int], Any]
                     ) -> Callable[[CustomerView], Any]:
    return lambda v: read(v._profile.presence, v._now)


_CUSTOMER_DERIVED: dict[str, Any] = {
    "customer_id": lambda v: v._state.customer_id,
    "first_name": lambda v: v._profile.name.split()[0] if v._profile.name else None,
    "visits_30d": lambda v: v._profile.visits_within(v._now, 30),
    "visits_90d": lambda v: v._profile.visits_within(v._now, 90),
    "visits_365d": lambda v: v._profile.visits_within(v._now, 365),
    "spend_365d": lambda v: v._profile.spend_within(v._now, 365),
    "days_since_last_visit": lambda v: _days_since(v, v._profile.last_visit_at),
    "days_since_first_visit": lambda v: _days_since(v, v._profile.first_visit_at),
    "avg_gap_days": lambda v: _avg_gap(v._profile),
    "avg_spend": lambda v: v._profile.avg_spend,
    "avg_rating": lambda v: (v._profile.rating_sum / v._profile.rating_count
                             if v._profile.rating_count else None),
    "favourite_item": lambda v: top_key(v._profile.item_counts),
    "favourite_category": lambda v: top_key(v._profile.category_counts),
    "usual_daypart": lambda v: top_key(v._profile.daypart_counts),
    "usual_weekday": lambda v: top_key(v._profile.weekday_counts),
    "p_alive": lambda v: v._score("p_alive"),
    "churn_risk": lambda v: v._score("churn_risk"),
    "expected_visits": lambda v: v._score("expected_visits"),
    "expected_spend": lambda v: v._score("expected_spend"),
    "clv": lambda v: v._score("clv"),
    "spend_percentile": lambda v: (v._context.aggregates.percentile(
        SPEND_HISTOGRAM, v._profile.total_spend) if v._profile.visit_count else None),
    "check_percentile": lambda v: v._context.aggregates.percentile(
        CHECK_HISTOGRAM, v._profile.avg_spend),
    "frequency_percentile": lambda v: (v._context.aggregates.percentile(
        VISITS_HISTOGRAM, v._profile.visit_count) if v._profile.visit_count else None),
    "r_score": lambda v: _recency_score(_days_since(v, v._profile.last_visit_at)),
    "f_score": lambda v: _quintile(v.get("frequency_percentile")),
    "m_score": lambda v: _quintile(v.get("check_percentile")),
    "rfm": lambda v: (None if not v._profile.visit_count else
                      f"{v.get('r_score')}{v.get('f_score')}{v.get('m_score')}"),
    **{name: _presence_getter(read) for name, read in PRESENCE_FIELDS.items()},
    "recommended_items": CustomerView.recommended_items,
    "recommended_item": CustomerView.recommended_item,
    "segment": CustomerView.segment,
    "check_tier": CustomerView.check_tier,
    "loyalty_tier": CustomerView.loyalty_tier,
    "segments": CustomerView.segments,
}
_CUSTOMER_FIELDS: dict[str, Callable[[CustomerView], Any]] = {
    **{profile_field.name: attrgetter(f"_profile.{profile_field.name}")
       for profile_field in fields(Profile)},
    **_CUSTOMER_DERIVED,
}
"""Every field of `customer.*` and how to read it from a view."""


def _no_field(view: CustomerView) -> None:
    return None


class VenueView(_View):
    __slots__ = ("_aggregates", "_venue_id")
    names: tuple[str, ...] = ("venue_id", "avg_amount", "visit_count", "median_amount",
                              "amount_p75")

    def __init__(self, venue_id: str | None, aggregates: Aggregates) -> None:
        self._venue_id = venue_id
        self._aggregates = aggregates

    def get(self, name: str, default: Any = None) -> Any:
        venue_id = self._venue_id
        value: Any = None
        if name == "venue_id":
            value = venue_id
        elif venue_id is not None:
            if name in ("visit_count", "avg_amount"):
                counts = self._aggregates.venue_counts(venue_id)
                if counts and counts[0]:
                    value = int(counts[0]) if name == "visit_count" else round(
                        counts[1] / counts[0], 2)
            elif name == "median_amount":
                value = self._aggregates.quantile(venue_histogram(venue_id), 0.5)
            elif name == "amount_p75":
                value = self._aggregates.quantile(venue_histogram(venue_id), 0.75)
        return default if value is None else value


class OfferView(_View):
    """`offer.<id>.*`: the vouchers issued by the current enrollment."""

    __slots__ = ("_enrollment", "_now", "_state")

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
    __slots__ = ("_enrollment", "_now", "_step_id")
    names: tuple[str, ...] = ("entered_at", "days_in", "step", "holdout", "variant",
                              "variants")

    def __init__(self, enrollment: Enrollment | None, step_id: str | None, now: int) -> None:
        self._enrollment = enrollment
        self._step_id = step_id
        self._now = now

    def get(self, name: str, default: Any = None) -> Any:
        enrollment = self._enrollment
        if enrollment is None:
            return default
        if name in ("variant", "variants"):
            drawn = enrollment.variant.split(",") if enrollment.variant else []
            return (drawn[-1] if drawn else default) if name == "variant" else drawn
        value: Any = {
            "entered_at": enrollment.entered_at,
            "days_in": (self._now - enrollment.entered_at) / DAY_MS,
            "step": self._step_id,
            "holdout": enrollment.holdout,
        }.get(name)
        return default if value is None else value


_NO_OFFERS = OfferView(CustomerState(""), None, 0)
"""`offer` outside a journey: no voucher was issued."""
_NO_JOURNEY = JourneyView(None, None, 0)
"""`journey` outside a journey: every field is null."""


def build_scope(state: CustomerState, now: int, context: ScopeContext, *,
                event: Event | None = None, venue_id: str | None = None,
                enrollment: Enrollment | None = None,
                step_id: str | None = None) -> dict[str, Any]:
    """The names an expression can read at `now`."""
    return {
        "now": now,
        "event": EventView(event, state.profile.timezone) if event is not None else None,
        "customer": CustomerView(state, now, context),
        "venue": context.venue(venue_id),
        "offer": OfferView(state, enrollment, now) if enrollment is not None else _NO_OFFERS,
        "journey": (JourneyView(enrollment, step_id, now) if enrollment is not None
                    else _NO_JOURNEY),
    }


for _view_class in (EventView, CustomerView, SegmentSet, VenueView, OfferView, JourneyView):
    register_view(_view_class)  # a call, not a decorator: decorated classes cannot be compiled
