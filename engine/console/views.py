"""What the console's pages show, gathered from a live engine (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from engine.console.live import LiveEngine
from engine.console.text import show_value, when
from engine.console.timeline import TimelineEntry, read_entries
from engine.core.scope import CustomerView
from engine.core.state import CustomerState
from engine.reporting.flow import flow_diagram
from engine.reporting.html import experiment_html
from engine.reporting.model import JourneyReport, Report, RunFacts
from engine.reporting.stats import build_report, reading
from engine.reporting.svg import message_bars, week_bars

SCORES = ("p_alive", "churn_risk", "expected_visits", "expected_spend", "clv", "rfm",
          "spend_percentile")
PROFILE_FIELDS = ("name", "email", "phone", "birthday", "timezone", "language", "visit_count",
                  "first_visit_at", "last_visit_at", "total_spend", "avg_spend",
                  "last_visit_amount", "last_venue_id", "last_rating", "favourite_item",
                  "favourite_category", "usual_daypart", "usual_weekday", "tags",
                  "consents", "unsubscribed", "vouchers_redeemed")
PRESENCE_FIELDS = ("presence_count", "presences_30d", "first_presence_at", "last_presence_at",
                   "last_presence_venue_id", "last_zone")
"""Shown for a customer who has been seen at a venue (presence events)."""


@dataclass(frozen=True)
class JourneyPage:
    journey_id: str
    name: str
    versions: list[JourneyVersion]


@dataclass(frozen=True)
class JourneyVersion:
    report: JourneyReport
    flow: Markup
    weeks: Markup
    messages: Markup
    reading: str
    experiments: Markup = field(default_factory=Markup)
    """The split steps' variants against each other and the holdout (see the report)."""


def engine_report(engine: LiveEngine) -> Report:
    """The counters of every journey version the engine runs, as the backtest report has them."""
    facts = RunFacts(generated_at="", source=f"prefix {engine.prefix!r}")
    return build_report(engine.stats(), engine.plans(), facts)


def journey_page(engine: LiveEngine, journey_id: str) -> JourneyPage | None:
    """A journey's versions, newest first, with their diagrams; None if it is unknown."""
    versions = [j for j in engine_report(engine).journeys if j.journey_id == journey_id]
    if not versions:
        return None
    versions.sort(key=lambda j: int(j.version) if j.version.isdigit() else -1, reverse=True)
    return JourneyPage(journey_id, versions[0].name, [
        JourneyVersion(
            journey,
            Markup(flow_diagram(journey)),  # the SVG builders escape every text
            Markup(week_bars(journey.weeks, f"Entries per week, {journey.key}")),
            Markup(message_bars(journey.steps,
                                f"Messages per step and channel, {journey.key}")),
            reading(journey.conversion) if journey.conversion else "",
            Markup("".join(experiment_html(e) for e in journey.experiments)))
        for journey in versions])


@dataclass(frozen=True)
class CustomerPage:
    customer_id: str
    timezone: str | None
    now: int
    profile: list[tuple[str, str]]
    segments: list[str]
    scores: list[tuple[str, str]]
    loyalty: list[tuple[str, str]]
    enrollments: list[dict[str, Any]]
    vouchers: list[dict[str, Any]]
    timeline: list[TimelineEntry]


def customer_page(engine: LiveEngine, state: CustomerState) -> CustomerPage:
    """Everything the engine keeps about one customer, as rows to show."""
    now = engine.clock(state)
    view = CustomerView(state, now, engine.context(now))
    profile = state.profile
    tz = profile.timezone

    def row(name: str, value: Any) -> tuple[str, str]:
        return name.replace("_", " "), show_value(name, value, tz)

    profile_rows = [row(name, view.get(name)) for name in PROFILE_FIELDS
                    if view.get(name) not in (None, [], {})]
    if profile.presence is not None:
        profile_rows += [row(name, view.get(name)) for name in PRESENCE_FIELDS
                         if view.get(name) is not None]
    scores = [row(name, view.get(name)) for name in SCORES]
    loyalty = [row("tier", view.loyalty_tier()), row("points", profile.points),
               row("points earned", profile.points_earned),
               row("points spent", profile.points_spent),
               row("points expired", profile.points_expired)]
    catalog = engine.catalog()
    enrollments = []
    for journey_id, enrollment in sorted(state.enrollments.items()):
        plan = catalog.plan(enrollment.journey, enrollment.version)
        step = (plan.steps[enrollment.step].step_id
                if plan is not None and 0 <= enrollment.step < len(plan.steps) else "end")
        enrollments.append({
            "journey": journey_id, "version": enrollment.version, "seq": enrollment.seq,
            "entered": when(enrollment.entered_at, tz), "holdout": enrollment.holdout,
            "step": step if enrollment.active else "",
            "due": when(enrollment.due_at, tz) if enrollment.due_at else "",
            "ended": when(enrollment.ended_at, tz) if enrollment.ended_at else "",
            "reason": (enrollment.end_reason or "").replace("_", " ").replace(":", ": "),
            "goal": enrollment.goal_reached, "active": enrollment.active,
            "segment": enrollment.segment or "",
        })
    vouchers = [{
        "code": code, "offer": voucher.offer_id, "journey": voucher.journey,
        "issued": when(voucher.issued_at, tz), "expires": when(voucher.expires_at, tz),
        "status": ("redeemed " + when(voucher.redeemed_at, tz) if voucher.redeemed_at
                   else "expired" if voucher.expires_at < now else "open"),
    } for code, voucher in sorted(state.vouchers.items(), key=lambda kv: -kv[1].issued_at)]
    return CustomerPage(state.customer_id, tz, now, profile_rows, view.segment_list(),
                        scores, loyalty, enrollments, vouchers,
                        read_entries(engine.timeline(state.customer_id)))

