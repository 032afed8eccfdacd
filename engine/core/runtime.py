"""The journey runtime: entries, steps, timers, branches, exits, goals, vouchers.

A pure library: it mutates a `CustomerState` and reports what happened through `Effects`.
Time is always passed in (event time or a timer's due time), never read from a clock, so
replays give byte-identical results and a 67-day journey runs in microseconds.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.core.aggregates import CHECK_HISTOGRAM, SPEND_HISTOGRAM, VISITS_HISTOGRAM, Aggregates
from engine.core.broadcast_times import BroadcastTimes
from engine.core.catalog import Catalog
from engine.core.commands import build_command
from engine.core.dates import capture_dates, event_entry_due, field_entry_due, step_due
from engine.core.declared_events import VISIT_TYPES
from engine.core.declared_visits import as_visit
from engine.core.events import Event
from engine.core.experiments import count_goal, count_sent, split_step
from engine.core.policy_gate import PolicyGate
from engine.core.profile import Profile, daypart_of
from engine.core.scope import CustomerView, ScopeContext, build_scope
from engine.core.state import CustomerState, Enrollment, Voucher
from engine.core.timeutil import (
    at_local_time,
    iso_date_local,
    iso_week,
    local_hour,
    next_yearly,
)
from engine.core.triggers import TRIGGER_CLOCK, Triggers
from engine.errors import JourneysError
from engine.run_defaults import DEFAULT_DEDUP_WINDOW_MS
from engine.scoring.model import DEFAULT_MODEL, ScoreModel, p_alive_crossing_ms
from journeys_dsl.dates import customer_date_events
from journeys_dsl.plan import (
    END,
    After,
    AtDate,
    AtTime,
    BroadcastEntry,
    DateEntry,
    DateFieldEntry,
    EventDateEntry,
    Immediate,
    InactivityEntry,
    IssueAction,
    JourneyPlan,
    PAliveEntry,
    PointsAction,
    SendAction,
    StepPlan,
    TagAction,
    WaitFor,
)
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import EMPTY_MODEL, CustomerModel

MAX_STEPS_PER_ADVANCE = 256
NEVER = 2**62
"""A time after every timer (epoch ms)."""
ANNIVERSARY_MIN_MS = 180 * 86_400_000  # the first anniversary is in the next year
POINTS_EXPIRY = "~points_expiry"
"""The armed-timer key of the loyalty balance's expiry (journey ids cannot start with ~)."""


@dataclass
class Effects:
    """What applying events and timers produced: message commands and statistics."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


class DuplicateEvent(JourneysError, ValueError):
    """The event's id was applied to this customer already, or the event is older than the
    duplicate window."""

    code = "duplicate_event"


class JourneyRuntime:
    """Applies events and fires timers for one customer at a time."""

    def __init__(self, catalog: Catalog, score_model: ScoreModel = DEFAULT_MODEL,
                 customer_model: CustomerModel = EMPTY_MODEL,
                 policies: Policies = NO_POLICIES, *,
                 dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS) -> None:
        self.catalog = catalog
        self.dedup_window_ms = dedup_window_ms
        self.score_model = score_model
        self.gate = PolicyGate(policies)
        self.customer_model = customer_model
        self.triggers = Triggers(catalog, customer_model)
        times = BroadcastTimes(list(catalog.current.values()))
        self.broadcasts: BroadcastTimes | None = times if times.plans else None
        """The current broadcasts, for customers first seen after a shard's walk."""

    # ------------------------------------------------------------------ events
    def context(self, aggregates: Aggregates, own: Aggregates | None = None) -> ScopeContext:
        """The scope context of a shard that reads `aggregates` and counts its visits in
        `own` (in `aggregates` when None)."""
        return ScopeContext(aggregates, self.customer_model, self.score_model, own)

    def apply_event(self, state: CustomerState, event: Event, ctx: ScopeContext,
                    effects: Effects) -> None:
        """Fire the customer's timers due up to the event, then apply the event.

        Raises DuplicateEvent for an id applied inside the duplicate window, or one older
        than it."""
        new_customer = self.broadcasts is not None and not state.seen
        refusal = state.refuse_event(event.event_id, event.ts, self.dedup_window_ms)
        if refusal is not None:
            raise DuplicateEvent(refusal)
        self.fire_due(state, event.applied_at, ctx, effects)
        triggered = self.catalog.triggered
        if triggered:
            self.triggers.before_event(state, event.ts, ctx)
        profile = state.profile
        arming = event.type  # the type whose time-based entries the event arms
        visit: Event | None = event if event.type == "visit" else (
            as_visit(event) if event.type in VISIT_TYPES else None)  # declared visit types
        if visit is not None:
            spend_before, check_before = (profile.total_spend, profile.avg_spend) \
                if profile.visit_count else (None, None)
            profile.apply(event)
            if visit is not event:
                profile.apply(visit)
                arming = "visit"
            self._count_visit(state, visit, ctx, spend_before, check_before)
        else:
            profile.apply(event)
            if event.type == "voucher_redeemed":
                self._redeem(state, event, effects)
        venue_id = event.data.get("venue_id") or profile.last_venue_id
        self._goals(state, event, venue_id, ctx, effects)
        if state.enrollments:
            self._exits_and_waits(state, event, venue_id, ctx, effects)
        entries = self.catalog.event_entries.get(event.type)
        timed = self.catalog.timed_entries.get(arming)
        if arming != event.type:  # a declared visit: its own time-based entries too
            own = self.catalog.timed_entries.get(event.type)
            if own:
                timed = [*own, *timed] if timed else own
        if entries or timed:
            entry_scope = build_scope(state, event.ts, ctx, event=event, venue_id=venue_id)
            if entries:
                self._event_entries(state, event, entry_scope, ctx, effects, entries)
            if timed:
                self._arm_timed_entries(state, event, arming, entry_scope, timed, effects)
        if triggered:
            self.triggers.after_event(self, state, event.ts, ctx, effects)
        if state.vouchers:
            state.prune_vouchers(event.ts)
        if new_customer and self.broadcasts is not None:
            self.broadcasts.arm_new(state, event.applied_at)

    def _count_visit(self, state: CustomerState, event: Event, ctx: ScopeContext,
                     spend_before: float | None, check_before: float | None) -> None:
        """Venue and population aggregates, loyalty points and their expiry timer."""
        profile = state.profile
        amount = float(event.data["amount"])
        aggregates = ctx.counts
        venue_id = event.data["venue_id"]
        aggregates.record_visit(venue_id, amount, ctx.aggregates.amount_cap(venue_id))
        aggregates.move(SPEND_HISTOGRAM, spend_before, profile.total_spend)
        aggregates.move(CHECK_HISTOGRAM, check_before, profile.avg_spend)
        aggregates.move(VISITS_HISTOGRAM, profile.visit_count - 1 or None, profile.visit_count)
        if self.catalog.counts_baskets:
            aggregates.record_basket(event.data["items"], event.applied_at)
        model = self.customer_model
        if model.accrue_points and model.tiers:
            tier = CustomerView(state, event.ts, ctx).loyalty_tier()
            rate = next((t.points_per_eur for t in model.tiers if t.tier_id == tier), 0.0)
            profile.add_points(int(amount * rate))
        if model.points_expire_after_s is not None and profile.last_visit_at is not None:
            due = profile.last_visit_at + model.points_expire_after_s * 1000
            state.armed[POINTS_EXPIRY] = due
            state.timer_set(due)

    def _redeem(self, state: CustomerState, event: Event, effects: Effects) -> None:
        code = event.data["voucher_id"]
        voucher = state.vouchers.get(code)
        if voucher is None:
            effects.stats["vouchers|unknown_code"] += 1
            return
        journey_key = voucher.journey
        if voucher.redeemed_at is not None:
            effects.stats[f"{journey_key}|voucher_rejected:already_redeemed"] += 1
            return
        if event.ts > voucher.expires_at:
            effects.stats[f"{journey_key}|voucher_rejected:expired"] += 1
            return
        plan = self._plan_of(journey_key)
        offer = plan.offers.get(voucher.offer_id) if plan else None
        if offer is not None and offer.dayparts:
            hour = local_hour(event.ts, state.profile.timezone, event.utc_offset_s)
            if daypart_of(hour) not in offer.dayparts:
                effects.stats[f"{journey_key}|voucher_rejected:daypart"] += 1
                return
        voucher.redeemed_at = event.ts
        state.profile.vouchers_redeemed += 1
        effects.stats[f"{journey_key}|voucher_redeemed:{voucher.offer_id}"] += 1

    def _plan_of(self, journey_key: str) -> JourneyPlan | None:
        journey_id, _, version = journey_key.partition("@")
        return self.catalog.plan(journey_id, int(version)) if version.isdigit() else None

    def _goals(self, state: CustomerState, event: Event, venue_id: str | None, ctx: ScopeContext,
               effects: Effects) -> None:
        for enrollment in state.enrollments.values():
            if enrollment.goal_reached or enrollment.goal_deadline is None:
                continue
            if event.ts > enrollment.goal_deadline or event.ts < enrollment.entered_at:
                continue
            plan = self.catalog.plan(enrollment.journey, enrollment.version)
            if plan is None or plan.goal is None or plan.goal.event_type != event.type:
                continue
            scope = build_scope(state, event.ts, ctx, event=event, venue_id=venue_id,
                                enrollment=enrollment)
            if plan.goal.condition is None or plan.goal.condition.test(scope):
                enrollment.goal_reached = True
                group = "goal_holdout" if enrollment.holdout else "goal"
                effects.stats[f"{plan.key}|{group}"] += 1
                effects.stats[f"{plan.key}|{group}_segment:{enrollment.segment or 'none'}"] += 1
                if enrollment.variant is not None:
                    count_goal(plan.key, enrollment, effects.stats)

    def _exits_and_waits(self, state: CustomerState, event: Event, venue_id: str | None,
                         ctx: ScopeContext, effects: Effects) -> None:
        for journey_id in sorted(state.enrollments):
            enrollment = state.enrollments[journey_id]
            if enrollment.ended_at is not None:
                continue
            plan = self.catalog.plan(enrollment.journey, enrollment.version)
            if plan is None:
                self._end(enrollment, event.ts, "version_missing", f"{journey_id}@?", effects)
                continue
            if event.type not in plan.reacts_to:
                continue
            scope = build_scope(state, event.ts, ctx, event=event, venue_id=venue_id,
                                enrollment=enrollment)
            exit_rule = next(
                (rule for rule in plan.exits if rule.event_type == event.type
                 and (rule.condition is None or rule.condition.test(scope))),
                None,
            )
            if exit_rule is not None:
                self._end(enrollment, event.ts, f"exit:{exit_rule.reason}", plan.key, effects)
                continue
            step = plan.steps[enrollment.step]
            timing = step.timing
            if (isinstance(timing, WaitFor) and timing.event_type == event.type
                    and (timing.condition is None or timing.condition.test(scope))):
                effects.stats[f"{plan.key}|wait_met:{step.step_id}"] += 1
                self._edge(plan, step, step.next_index, effects)
                self._move(enrollment, step.next_index, event.ts)
                self._advance(state, plan, enrollment, event.ts, ctx, effects)

    def _event_entries(self, state: CustomerState, event: Event, scope: dict[str, Any],
                       ctx: ScopeContext, effects: Effects, plans: list[JourneyPlan]) -> None:
        for plan in plans:
            if not may_enter(state, plan, event.ts):
                continue  # before the condition: the cheaper test, and enough to refuse
            condition = plan.entry.condition
            if condition is not None and not condition.test(scope):
                continue
            self._enter(state, plan, event.ts, ctx, effects, event)

    def _arm_timed_entries(self, state: CustomerState, event: Event, arming: str,
                           scope: dict[str, Any], plans: list[JourneyPlan],
                           effects: Effects) -> None:
        """Arm (or disarm) the time-based entries `event` starts or moves (see
        `Catalog.timed_entries`); `arming` is its type, or "visit" for a declared type that
        counts as a visit."""
        profile = state.profile
        for plan in plans:
            entry = plan.entry
            journey_id = plan.journey_id
            if isinstance(entry, InactivityEntry | PAliveEntry):
                if entry.condition is not None and not entry.condition.test(scope):
                    state.armed.pop(journey_id, None)
                    continue
                due: int | None
                if isinstance(entry, InactivityEntry):
                    due = (profile.last_visit_at or event.ts) + entry.after_s * 1000
                else:
                    due = p_alive_crossing_ms(profile.visit_count, profile.first_visit_at,
                                              profile.last_visit_at, entry.threshold,
                                              self.score_model.bgnbd,
                                              unit_days=self.score_model.unit_days)
                if due is None:
                    state.armed.pop(journey_id, None)
                else:
                    state.armed[journey_id] = due = max(due, event.ts)
                    state.timer_set(due)
            elif isinstance(entry, DateEntry):
                if journey_id in state.armed and event.type != "profile":
                    # armed already: only a profile event moves the date; a date that is
                    # gone disarms it
                    if _date_source(profile, entry) is None:
                        state.armed.pop(journey_id, None)
                    continue
                month_day = self._date_of(state, entry)
                if month_day is None:
                    state.armed.pop(journey_id, None)
                else:
                    due = self._next_date(state, entry, month_day, event.ts)
                    state.armed[journey_id] = due
                    state.timer_set(due)
            else:
                self._arm_date_entry(state, event, arming, scope, plan, effects)

    @staticmethod
    def _arm_date_entry(state: CustomerState, event: Event, arming: str,
                        scope: dict[str, Any], plan: JourneyPlan, effects: Effects) -> None:
        """Arm an entry at a date of the profile, or at a date of the event (the latest
        event that meets the condition decides; one whose time has passed disarms it)."""
        entry = plan.entry
        journey_id = plan.journey_id
        due: int | None
        if isinstance(entry, DateFieldEntry):
            if (journey_id in state.armed and event.type != "profile"
                    and arming not in customer_date_events(entry.date.name)):
                return
            due = field_entry_due(state, entry, event.ts)
        elif isinstance(entry, EventDateEntry):
            if entry.condition is not None and not entry.condition.test(scope):
                return
            due, skipped = event_entry_due(state, entry, event)
            if skipped is not None:
                effects.stats[f"{plan.key}|entry_{skipped}"] += 1
        else:
            return
        if due is None:
            state.armed.pop(journey_id, None)
        else:
            state.armed[journey_id] = due
            state.timer_set(due)

    def _date_of(self, state: CustomerState, entry: DateEntry) -> str | None:
        """The entry's MM-DD (None: the customer has no such date)."""
        profile = state.profile
        source = _date_source(profile, entry)
        if source is None or isinstance(source, str):
            return source
        return iso_date_local(source, profile.timezone)[5:]

    def _next_date(self, state: CustomerState, entry: DateEntry, month_day: str,
                   after: int) -> int:
        """The next yearly date after `after`; an anniversary waits for a year at least."""
        hour, minute = entry.local_time
        first = state.profile.first_visit_at
        if entry.kind == "first_visit_anniversary" and first is not None:
            after = max(after, first + ANNIVERSARY_MIN_MS)
        return next_yearly(month_day, after, hour, minute, entry.offset_s * 1000,
                           state.profile.timezone)

    # ------------------------------------------------------------------ timers
    def fire_due(self, state: CustomerState, until: int, ctx: ScopeContext,
                 effects: Effects) -> None:
        """Fire, in due order, every timer of the customer due at or before `until`.

        An enrollment that fires more than MAX_STEPS_PER_ADVANCE times in one call (a loop
        of steps with tiny waits) is ended with the reason "step_limit".
        """
        if state.due_floor > until:
            return
        firings: Counter[str] | None = None
        enrollments, armed = state.enrollments, state.armed
        while True:
            # the earliest (due, enrollment before armed entry, journey id)
            best_due, best_armed, best_id = NEVER, False, ""
            for journey_id, enrollment in enrollments.items():
                due = enrollment.due_at
                if due is None or enrollment.ended_at is not None:
                    continue
                if due < best_due or (due == best_due and journey_id < best_id):
                    best_due, best_id = due, journey_id
            for journey_id, due in armed.items():
                if due < best_due or (due == best_due and best_armed and journey_id < best_id):
                    best_due, best_armed, best_id = due, True, journey_id
            if best_due > until:
                state.due_floor = best_due
                return
            due, journey_id = best_due, best_id
            if firings is None:
                firings = Counter()
            if not best_armed:
                enrollment = enrollments[journey_id]
                plan = self.catalog.plan(enrollment.journey, enrollment.version)
                firings[journey_id] += 1
                if plan is None:
                    self._end(enrollment, due, "version_missing", f"{journey_id}@?", effects)
                elif firings[journey_id] > MAX_STEPS_PER_ADVANCE:
                    self._end(enrollment, due, "step_limit", plan.key, effects)
                elif plan.condition_exits:
                    self.triggers.fire_step(self, state, plan, enrollment, due, ctx, effects)
                else:
                    self._advance(state, plan, enrollment, due, ctx, effects)
            else:
                self._fire_armed(state, journey_id, due, ctx, effects)

    def _fire_armed(self, state: CustomerState, journey_id: str, due: int, ctx: ScopeContext,
                    effects: Effects) -> None:
        del state.armed[journey_id]
        if journey_id == POINTS_EXPIRY:
            self._expire_points(state, effects)
            return
        if journey_id == TRIGGER_CLOCK:
            self.triggers.on_clock(self, state, due, ctx, effects)
            return
        plan = self.catalog.current.get(journey_id)
        if plan is None:
            return
        entry = plan.entry
        if isinstance(entry, DateEntry):
            month_day = self._date_of(state, entry)
            if month_day is None:
                return
            yearly = self._next_date(state, entry, month_day, due)
            state.armed[journey_id] = yearly
            state.timer_set(yearly)
        elif isinstance(entry, DateFieldEntry):
            following = field_entry_due(state, entry, due) if entry.yearly else None
            if following is not None:
                state.armed[journey_id] = following
                state.timer_set(following)
        if not may_enter(state, plan, due):
            return
        if isinstance(entry, DateEntry | DateFieldEntry | BroadcastEntry) \
                and entry.condition is not None:
            # checked when the entry fires (a broadcast's audience as of the customer's
            # broadcast time); the other timed entries checked theirs when armed
            scope = build_scope(state, due, ctx, venue_id=state.profile.last_venue_id)
            if not entry.condition.test(scope):
                return
        self._enter(state, plan, due, ctx, effects)

    @staticmethod
    def _expire_points(state: CustomerState, effects: Effects) -> None:
        """The loyalty balance expires after the configured time without a visit."""
        profile = state.profile
        if profile.points > 0:
            effects.stats["loyalty|points_expired"] += profile.points
            profile.points_expired += profile.points
            profile.points = 0

    # ------------------------------------------------------------------ enrollments
    def enroll(self, state: CustomerState, plan: JourneyPlan, at: int, ctx: ScopeContext,
               effects: Effects, event: Event | None = None) -> bool:
        """Enter the customer into `plan` at `at` if the re-entry rules allow it; `event`
        is the entry event, whose dates the steps may be timed by."""
        if not may_enter(state, plan, at):
            return False
        self._enter(state, plan, at, ctx, effects, event)
        return True

    def _enter(self, state: CustomerState, plan: JourneyPlan, at: int, ctx: ScopeContext,
               effects: Effects, event: Event | None = None) -> None:
        """`enroll` once the re-entry rules have let the customer in."""
        previous = state.enrollments.get(plan.journey_id)
        seq = previous.seq + 1 if previous is not None else 1
        holdout = stable_fraction(state.customer_id, plan.journey_id) < plan.holdout
        enrollment = Enrollment(
            journey=plan.journey_id, version=plan.version, seq=seq, entered_at=at,
            holdout=holdout, step=0, arrived_at=at,
            goal_deadline=at + plan.goal.within_s * 1000 if plan.goal is not None else None,
        )
        segment = CustomerView(state, at, ctx).segment() or "none"
        enrollment.segment = segment
        if event is not None and plan.event_dates:
            enrollment.dates = capture_dates(plan.event_dates, event)
        state.enrollments[plan.journey_id] = enrollment
        group = "entered_holdout" if holdout else "entered"
        effects.stats[f"{plan.key}|{group}"] += 1
        effects.stats[f"{plan.key}|{group}_week:{iso_week(at)}"] += 1
        effects.stats[f"{plan.key}|{group}_segment:{segment}"] += 1
        self._advance(state, plan, enrollment, at, ctx, effects)
        if plan.condition_exits:
            self.triggers.entered(state, plan, at)

    def _advance(self, state: CustomerState, plan: JourneyPlan, enrollment: Enrollment,
                 now: int, ctx: ScopeContext, effects: Effects) -> None:
        """Run the enrollment's steps that are due at `now`; schedule the next one."""
        for _ in range(MAX_STEPS_PER_ADVANCE):
            if enrollment.step == END:
                self._end(enrollment, enrollment.arrived_at, "completed", plan.key, effects)
                return
            step = plan.steps[enrollment.step]
            skip: str | None = None
            if isinstance(step.timing, AtDate):
                planned, skip = step_due(state, plan, enrollment, step.timing)
            else:
                planned = self._due_of(state, step, enrollment)
            due = planned
            channels = _channels(step)
            if (channels and not enrollment.holdout and skip is None
                    and not isinstance(step.timing, WaitFor)):
                due = self.gate.send_time(planned, channels, state)
            if due > now:
                enrollment.due_at = due
                state.timer_set(due)
                return
            if due != planned:
                effects.stats[f"{plan.key}|quiet_delayed:{step.step_id}"] += 1
            if isinstance(step.timing, WaitFor):
                effects.stats[f"{plan.key}|wait_timeout:{step.step_id}"] += 1
                self._edge(plan, step, step.timing.on_timeout, effects)
                self._move(enrollment, step.timing.on_timeout, due)
                continue
            target = self._run_step(state, plan, enrollment, step, due, ctx, effects, skip)
            self._edge(plan, step, target, effects)
            self._move(enrollment, target, due)
        self._end(enrollment, now, "step_limit", plan.key, effects)

    def _due_of(self, state: CustomerState, step: StepPlan, enrollment: Enrollment) -> int:
        timing = step.timing
        if isinstance(timing, Immediate):
            return enrollment.arrived_at
        if isinstance(timing, AtTime):
            due = enrollment.entered_at + timing.offset_s * 1000
            if timing.local_time is not None:
                hour, minute = timing.local_time
                due = at_local_time(due, hour, minute, state.profile.timezone)
            return max(due, enrollment.arrived_at)
        if isinstance(timing, After):
            return enrollment.arrived_at + timing.delay_s * 1000
        if isinstance(timing, WaitFor):
            return enrollment.arrived_at + timing.timeout_s * 1000
        return enrollment.arrived_at  # a date step: see `engine.core.dates.step_due`

    def _run_step(self, state: CustomerState, plan: JourneyPlan, enrollment: Enrollment,
                  step: StepPlan, at: int, ctx: ScopeContext, effects: Effects,
                  skip: str | None = None) -> int:
        """Perform a step at `at` and return the index of the next one; with a `skip`
        reason (a date step whose date is missing or passed) only move on."""
        scope = build_scope(state, at, ctx, venue_id=state.profile.last_venue_id,
                            enrollment=enrollment,
                            step_id=step.step_id)
        if skip is not None:
            effects.stats[f"{plan.key}|skipped:{step.step_id}"] += 1
            effects.stats[f"{plan.key}|{skip}:{step.step_id}"] += 1
        elif step.guard is not None and not step.guard.test(scope):
            effects.stats[f"{plan.key}|skipped:{step.step_id}"] += 1
        else:
            group = "holdout" if enrollment.holdout else "reached"
            effects.stats[f"{plan.key}|{group}:{step.step_id}"] += 1
            if not enrollment.holdout:
                self._perform(state, plan, enrollment, step, at, scope, effects)
        if step.split:
            draw = stable_fraction(state.customer_id, plan.journey_id, step.step_id)
            return split_step(plan, enrollment, step, draw, effects.stats)
        for branch in step.branches:
            if branch.condition is None or branch.condition.test(scope):
                return branch.target
        return step.next_index

    def _perform(self, state: CustomerState, plan: JourneyPlan, enrollment: Enrollment,
                 step: StepPlan, at: int, scope: dict[str, Any], effects: Effects) -> None:
        """Vouchers, points and tags first, then messages, so a message can show its code."""
        unreached = self.gate.unreached_vouchers(state, step.actions)
        for action in step.actions:
            if isinstance(action, IssueAction):
                if unreached is not None:
                    effects.stats[f"{plan.key}|{unreached}:{action.offer_id}"] += 1
                    if unreached == "voucher_withheld":
                        continue
                offer = plan.offers[action.offer_id]
                code = voucher_code(state.customer_id, plan, enrollment.seq, action.offer_id)
                state.vouchers[code] = Voucher(action.offer_id, plan.key, at,
                                               at + offer.valid_for_s * 1000)
                enrollment.vouchers[action.offer_id] = code
                effects.stats[f"{plan.key}|voucher_issued:{action.offer_id}"] += 1
            elif isinstance(action, PointsAction):
                state.profile.add_points(action.points)
                effects.stats[f"{plan.key}|points_granted"] += action.points
            elif isinstance(action, TagAction):
                state.profile.set_tag(action.tag, not action.remove)
        for index, action in enumerate(step.actions):
            if isinstance(action, SendAction):
                refusal = self.gate.refusal(state, action.channel, at)
                if refusal is not None:
                    effects.stats[f"{plan.key}|{refusal}:{step.step_id}:{action.channel}"] += 1
                    continue
                effects.commands.append(build_command(
                    state, plan, enrollment, step.step_id, index, action, at, scope))
                self.gate.record(state, action.channel, at)
                effects.stats[f"{plan.key}|sent:{step.step_id}:{action.channel}"] += 1
                if enrollment.variant is not None:
                    count_sent(plan.key, enrollment, effects.stats)

    @staticmethod
    def _edge(plan: JourneyPlan, step: StepPlan, target: int, effects: Effects) -> None:
        """Count a move between steps, for the journey's flow diagram."""
        name = "end" if target == END else plan.steps[target].step_id
        effects.stats[f"{plan.key}|edge:{step.step_id}:{name}"] += 1

    @staticmethod
    def _move(enrollment: Enrollment, target: int, at: int) -> None:
        enrollment.step = target
        enrollment.arrived_at = at
        enrollment.due_at = None

    @staticmethod
    def _end(enrollment: Enrollment, at: int, reason: str, journey_key: str,
             effects: Effects) -> None:
        enrollment.ended_at = at
        enrollment.end_reason = reason
        enrollment.due_at = None
        effects.stats[f"{journey_key}|{reason}"] += 1


def _date_source(profile: Profile, entry: DateEntry) -> str | int | None:
    """What a yearly date entry's date comes from: the birthday (MM-DD) or the first
    visit's time."""
    return profile.birthday if entry.kind == "birthday" else profile.first_visit_at


def may_enter(state: CustomerState, plan: JourneyPlan, at: int) -> bool:
    """Whether the re-entry rules let the customer enter `plan` at `at`: not while in it,
    and after an earlier enrollment only as the journey's `re_entry` allows."""
    previous = state.enrollments.get(plan.journey_id)
    if previous is None:
        return True
    if previous.active:
        return False
    rule = plan.re_entry
    if rule.mode == "never":
        return False
    ended = previous.ended_at or previous.entered_at
    return rule.mode != "after" or at >= ended + rule.after_s * 1000


def _channels(step: StepPlan) -> list[str]:
    """The channels a step sends on."""
    return [action.channel for action in step.actions if isinstance(action, SendAction)]


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) fixed by its inputs: the holdout draw of a customer in a journey."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def voucher_code(customer_id: str, plan: JourneyPlan, seq: int, offer_id: str) -> str:
    """A deterministic, hard-to-guess voucher code such as DESSERT-7K3Q9ZP2."""
    digest = hashlib.blake2b(
        f"{customer_id}\x1f{plan.key}\x1f{seq}\x1f{offer_id}".encode(), digest_size=10
    ).digest()
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    value = int.from_bytes(digest, "big")
    suffix = "".join(alphabet[(value >> (5 * i)) & 31] for i in range(10))
    prefix = "".join(ch for ch in offer_id.upper() if ch.isalnum())[:10]
    return f"{prefix}-{suffix}"

