"""When a condition on a customer can change with the passage of time alone.

Segment triggers and condition exits (`engine.core.triggers`) are checked after every
event; between events, a durable timer re-checks them at the next moment the clock alone
could change the answer, read from the fields the condition uses:

- `visits_30d`, `visits_90d`, `visits_365d`, `spend_365d`: when the oldest visit inside
  the window leaves it;
- `days_since_last_visit`, `days_since_first_visit` and `journey.days_in` compared with
  numbers: when the days cross each number; `r_score`: when they cross 7, 30, 90 and 180;
- `offer.<id>.expired`: when the voucher expires;
- scores, percentiles, venue figures, and any other use of the clock (`days_since()`, a
  days field in arithmetic): at the next start of a UTC day. Scores and chain-wide figures
  are read as of the start of the day, so that is when they change.

Fields that only events change (visit count, tags, spend...) need no timer.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass

from engine.core.scope import RECENCY_DAYS
from engine.core.state import CustomerState, Enrollment
from engine.core.timeutil import DAY_MS
from journeys_dsl.plan import Expression
from journeys_dsl.segments import CustomerModel

WINDOW_DAYS = {"visits_30d": 30, "visits_90d": 90, "visits_365d": 365, "spend_365d": 365}
"""Trailing-window fields and their length in days."""
SINCE_FIELDS = ("days_since_last_visit", "days_since_first_visit")
DAILY_FIELDS = frozenset((
    "p_alive", "churn_risk", "expected_visits", "expected_spend", "clv", "spend_percentile",
    "check_percentile", "frequency_percentile", "f_score", "m_score"))
"""Fields read as of the start of the day: they change at most once a day."""
CLOCK_FUNCTIONS = frozenset(("days_since", "hours_since", "days_until"))
_ORDERING = ("<", "<=", ">", ">=", "==", "!=", "in", "not in")
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class ClockRule:
    """What of the clock a condition depends on (see the module's docstring)."""

    windows: frozenset[int] = frozenset()
    """Lengths in days of the trailing windows read."""
    since_last: frozenset[int] = frozenset()
    """Times after the last visit (ms) at which the answer can change."""
    since_first: frozenset[int] = frozenset()
    days_in: frozenset[int] = frozenset()
    """Times after entry (ms) at which the answer can change."""
    offers: frozenset[str] = frozenset()
    """Offers whose expiry is read."""
    daily: bool = False
    """Re-check at the start of every UTC day."""

    def __or__(self, other: ClockRule) -> ClockRule:
        return ClockRule(self.windows | other.windows, self.since_last | other.since_last,
                         self.since_first | other.since_first, self.days_in | other.days_in,
                         self.offers | other.offers, self.daily or other.daily)

    @property
    def timeless(self) -> bool:
        """Whether only events can change the answer."""
        return self == NO_CLOCK

    def next_change(self, state: CustomerState, now: int,
                    enrollment: Enrollment | None = None) -> int | None:
        """The first moment after `now` at which the answer could change with no event."""
        profile = state.profile
        found: list[int] = []
        visits = profile.recent_visits
        for days in self.windows:
            span = days * DAY_MS
            first = bisect.bisect_right(visits, now - span)
            if first < len(visits):
                found.append(visits[first] + span)
        found.extend(_crossings(profile.last_visit_at, self.since_last, now))
        found.extend(_crossings(profile.first_visit_at, self.since_first, now))
        if enrollment is not None:
            found.extend(_crossings(enrollment.entered_at, self.days_in, now))
            for offer_id in self.offers:
                voucher = state.vouchers.get(enrollment.vouchers.get(offer_id, ""))
                if voucher is not None and voucher.expires_at >= now:
                    found.append(voucher.expires_at + 1)
        if self.daily:
            found.append((now // DAY_MS + 1) * DAY_MS)
        later = [moment for moment in found if moment > now]
        return min(later) if later else None


NO_CLOCK = ClockRule()
DAILY = ClockRule(daily=True)


def _crossings(base: int | None, offsets: Iterable[int], now: int) -> list[int]:
    """The moments `base + offset` still to come."""
    if base is None:
        return []
    return [base + offset for offset in offsets if base + offset > now]


def _offsets(comparisons: list[tuple[str, float]]) -> frozenset[int]:
    """Where a days field compared as given can change: `> 30` turns true just after 30
    days (1 ms), `>= 30` at 30 days; `==` and `!=` at both."""
    out: set[int] = set()
    for op, days in comparisons:
        moment = math.ceil(days * DAY_MS)
        if op in (">=", "<"):
            out.add(moment)
        elif op in (">", "<="):
            out.add(moment + 1)
        else:
            out.update((moment, moment + 1))
    return frozenset(out)


def condition_clock(condition: Expression | None, model: CustomerModel,
                    _seen: frozenset[str] = frozenset()) -> ClockRule:
    """The clock rule of a compiled condition, given the segments file it may read."""
    if condition is None:
        return NO_CLOCK
    refs = getattr(condition, "refs", None)
    literals = getattr(condition, "literal_comparisons", None)
    functions = getattr(condition, "functions", None)
    if refs is None or literals is None or functions is None:
        return DAILY  # not a compiled expression of the language: re-check daily
    rule = DAILY if any(name in CLOCK_FUNCTIONS for name, _ in functions) else NO_CLOCK
    thresholds: dict[int, list[tuple[str, float]]] = {}
    """Offset of a field -> (comparison with the field on the left, number)."""
    texts: dict[int, list[str]] = {}
    for literal in literals:
        if literal.op not in _ORDERING:
            continue
        value = literal.value
        if isinstance(value, str):
            texts.setdefault(literal.field.offset, []).append(value)
        else:
            op = literal.op
            if literal.offset < literal.field.offset:  # 30 < customer.days_...
                op = _MIRRORED.get(op, op)
            thresholds.setdefault(literal.field.offset, []).append((op, float(value)))
    for ref in refs:
        name = ref.path[0] if ref.path else ""
        if ref.root == "venue":
            rule |= DAILY
        elif ref.root == "journey" and name == "days_in":
            numbers = thresholds.get(ref.offset)
            rule |= ClockRule(days_in=_offsets(numbers)) if numbers else DAILY
        elif ref.root == "offer" and len(ref.path) >= 2 and ref.path[1] == "expired":
            rule |= ClockRule(offers=frozenset((name,)))
        elif ref.root == "customer":
            rule |= _customer_field(name, thresholds.get(ref.offset),
                                    texts.get(ref.offset), model, _seen)
    return rule


def _customer_field(name: str, numbers: list[tuple[str, float]] | None,
                    texts: list[str] | None,
                    model: CustomerModel, seen: frozenset[str]) -> ClockRule:
    if name in WINDOW_DAYS:
        return ClockRule(windows=frozenset((WINDOW_DAYS[name],)))
    if name in SINCE_FIELDS:
        if not numbers:
            return DAILY
        if name == "days_since_last_visit":
            return ClockRule(since_last=_offsets(numbers))
        return ClockRule(since_first=_offsets(numbers))
    if name in ("r_score", "rfm"):
        recency = ClockRule(since_last=_offsets([(">", days) for days in RECENCY_DAYS]))
        return recency | DAILY if name == "rfm" else recency
    if name in DAILY_FIELDS:
        return DAILY
    if name in ("segment", "check_tier") and texts:  # == 'x': the rules up to x only
        return _union(segment_clock(segment_id, model, seen) for segment_id in texts)
    if name == "segments":
        ids = texts if texts else model.segment_ids()
        return _union(segment_clock(segment_id, model, seen) for segment_id in ids)
    conditions: tuple[Expression | None, ...] | None = {
        "segment": tuple(rule.condition for rule in model.activity),
        "check_tier": tuple(rule.condition for rule in model.check_tier),
        "loyalty_tier": tuple(tier.condition for tier in model.tiers)}.get(name)
    if conditions is not None:
        return _union(condition_clock(condition, model, seen) for condition in conditions)
    return NO_CLOCK


def segment_clock(segment_id: str, model: CustomerModel,
                  _seen: frozenset[str] = frozenset()) -> ClockRule:
    """The clock rule of membership of one segment: its own rule and, in an exclusive list
    (activity, check_tier), every rule before it."""
    if segment_id in _seen:
        return NO_CLOCK
    seen = _seen | {segment_id}
    for rules in (model.activity, model.check_tier):
        ids = [rule.segment_id for rule in rules]
        if segment_id in ids:
            upto = rules[:ids.index(segment_id) + 1]
            return _union(condition_clock(rule.condition, model, seen) for rule in upto)
    rule = model.segment_rule(segment_id)
    return condition_clock(rule.condition, model, seen) if rule is not None else NO_CLOCK


def _union(rules: Iterable[ClockRule]) -> ClockRule:
    out = NO_CLOCK
    for rule in rules:
        out |= rule
    return out
