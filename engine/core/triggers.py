"""Segment triggers and condition exits: journeys that react to what the profile or the
clock makes true, rather than to one event.

- `entry: segment: {enters: vip}` (or `leaves:`) enters a customer when their membership
  of a segment changes. The membership is remembered in the customer's state
  (`CustomerState.memberships`, one small number per watched segment) and compared after
  every event the customer has, and at a durable timer armed for the next moment the
  clock alone could change it (`engine.core.clock_rules`). No scan of all customers.
- `exit: - when: ...` ends an enrollment when its condition holds: checked after every
  event of an enrolled customer, before each of the enrollment's steps runs on its timer,
  and at the same durable timer.

First sight: the first time a customer is checked for a segment, at an event, their
membership just before the event is worked out from the profile as it was
(`before_event`), so the event enters them only if it changes the membership; a customer
already in the segment does not enter. A timer that finds a membership never checked
(a journey loaded since the timer was set) records it without entering. A segment stops
being watched for a customer whom none of its journeys can enter again (`re_entry: never`
and entered once).

Everything runs only when a loaded journey uses these constructs (`Catalog.triggered`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.core.catalog import Catalog
from engine.core.clock_rules import ClockRule, condition_clock, segment_clock
from engine.core.scope import CustomerView, ScopeContext, build_scope
from engine.core.state import CustomerState, Enrollment
from journeys_dsl.plan import JourneyPlan, SegmentEntry
from journeys_dsl.segments import CustomerModel

if TYPE_CHECKING:
    from engine.core.runtime import Effects, JourneyRuntime

TRIGGER_CLOCK = "~triggers"
"""The armed-timer key of the customer's next segment or condition-exit check (journey
ids cannot start with ~)."""


class Triggers:
    """Checks segment entries and condition exits for one runtime."""

    def __init__(self, catalog: Catalog, model: CustomerModel) -> None:
        self.catalog = catalog
        self.model = model
        self._segment_clocks: dict[str, ClockRule] = {}
        self._exit_clocks: dict[str, ClockRule] = {}
        self._entries: tuple[dict[str, list[JourneyPlan]],
                             list[tuple[str, list[JourneyPlan]]]] = ({}, [])
        """The catalog's segment entries, and them in segment id order."""

    # ------------------------------------------------------------------ hooks
    def before_event(self, state: CustomerState, at: int, ctx: ScopeContext) -> None:
        """Before an event at `at` changes the profile: the memberships never checked yet,
        from the profile as it is (first sight)."""
        known = state.memberships
        if known.keys() >= self.catalog.segment_entries.keys():
            return  # every segment is known (or none is watched)
        view: CustomerView | None = None
        for segment_id in self.watched(state):
            if segment_id not in known:
                if view is None:
                    view = CustomerView(state, at, ctx)
                known[segment_id] = int(view.in_segment(segment_id))

    def after_event(self, runtime: JourneyRuntime, state: CustomerState, at: int,
                    ctx: ScopeContext, effects: Effects) -> None:
        """After an event is applied at `at`: condition exits of the enrollments entered
        before it, then segment changes."""
        self.exits(runtime, state, at, ctx, effects)
        self.segments(runtime, state, at, ctx, effects)
        self.arm(state, at)

    def on_clock(self, runtime: JourneyRuntime, state: CustomerState, due: int,
                 ctx: ScopeContext, effects: Effects) -> None:
        """The customer's trigger timer fired at `due`."""
        self.exits(runtime, state, due, ctx, effects)
        self.segments(runtime, state, due, ctx, effects)
        self.arm(state, due)

    def fire_step(self, runtime: JourneyRuntime, state: CustomerState, plan: JourneyPlan,
                  enrollment: Enrollment, due: int, ctx: ScopeContext,
                  effects: Effects) -> None:
        """An enrollment of a plan with condition exits is due at `due`: exit if one holds,
        else run its steps."""
        if enrollment.entered_at >= due or not self.exit(runtime, state, plan, enrollment,
                                                         due, ctx, effects):
            runtime._advance(state, plan, enrollment, due, ctx, effects)
        self.arm(state, due)

    def entered(self, state: CustomerState, plan: JourneyPlan, at: int) -> None:
        """A customer entered `plan` at `at` (its time-only exits need the timer)."""
        if plan.condition_exits:
            self.arm(state, at)

    # ------------------------------------------------------------------ exits
    def exits(self, runtime: JourneyRuntime, state: CustomerState, at: int,
              ctx: ScopeContext, effects: Effects) -> None:
        """Condition exits of the active enrollments entered before `at`."""
        if not self.catalog.condition_exits:
            return
        for journey_id in sorted(state.enrollments):
            enrollment = state.enrollments[journey_id]
            if enrollment.ended_at is not None or enrollment.entered_at >= at:
                continue
            plan = self.catalog.plan(enrollment.journey, enrollment.version)
            if plan is not None and plan.condition_exits:
                self.exit(runtime, state, plan, enrollment, at, ctx, effects)

    @staticmethod
    def exit(runtime: JourneyRuntime, state: CustomerState, plan: JourneyPlan,
             enrollment: Enrollment, at: int, ctx: ScopeContext, effects: Effects) -> bool:
        """End the enrollment at `at` if one of its condition exits holds."""
        step = plan.steps[enrollment.step] if enrollment.step >= 0 else None
        scope = build_scope(state, at, ctx, venue_id=state.profile.last_venue_id,
                            enrollment=enrollment,
                            step_id=step.step_id if step is not None else None)
        for rule in plan.condition_exits:
            if rule.condition.test(scope):
                runtime._end(enrollment, at, f"exit:{rule.reason}", plan.key, effects)
                return True
        return False

    # ------------------------------------------------------------------ segments
    def segments(self, runtime: JourneyRuntime, state: CustomerState, at: int,
                 ctx: ScopeContext, effects: Effects) -> None:
        """Compare the watched segments' memberships with the remembered ones; enter the
        journeys of each change."""
        watched = self.watched(state)
        if not watched and not state.memberships:
            return
        view = CustomerView(state, at, ctx)
        known = state.memberships
        now: dict[str, int] = {}
        changed: list[tuple[str, bool]] = []
        for segment_id in watched:
            member = view.in_segment(segment_id)
            now[segment_id] = int(member)
            before = known.get(segment_id)
            if before is not None and bool(before) != member:
                changed.append((segment_id, member))
        state.memberships = now
        if not changed:
            return
        for segment_id, member in changed:
            for plan in self.catalog.segment_entries[segment_id]:
                entry = plan.entry
                if not isinstance(entry, SegmentEntry) or entry.enters != member:
                    continue
                if entry.condition is not None and not entry.condition.test(build_scope(
                        state, at, ctx, venue_id=state.profile.last_venue_id)):
                    continue
                runtime.enroll(state, plan, at, ctx, effects)
        still = self.watched(state)  # an entry may close a segment for good
        if len(still) < len(now):
            state.memberships = {k: v for k, v in now.items() if k in still}

    def watched(self, state: CustomerState) -> list[str]:
        """The segments to watch for this customer: those of a journey that could still
        enter them (in segment id order)."""
        entries = self.catalog.segment_entries
        if entries is not self._entries[0]:  # the catalog was reindexed
            self._entries = (entries, sorted(entries.items()))
        enrollments = state.enrollments
        return [segment_id for segment_id, plans in self._entries[1]
                if any(plan.journey_id not in enrollments or plan.re_entry.mode != "never"
                       for plan in plans)]

    # ------------------------------------------------------------------ the timer
    def arm(self, state: CustomerState, now: int) -> None:
        """Set the customer's trigger timer to the next moment the clock alone could change
        a watched segment or an active enrollment's condition exit (none: no timer)."""
        due: int | None = None
        for segment_id in state.memberships:
            moment = self.segment_clock(segment_id).next_change(state, now)
            if moment is not None and (due is None or moment < due):
                due = moment
        if self.catalog.condition_exits:
            for enrollment in state.enrollments.values():
                if enrollment.ended_at is not None:
                    continue
                plan = self.catalog.plan(enrollment.journey, enrollment.version)
                if plan is None or not plan.condition_exits:
                    continue
                moment = self.exit_clock(plan).next_change(state, now, enrollment)
                if moment is not None and (due is None or moment < due):
                    due = moment
        if due is None:
            state.armed.pop(TRIGGER_CLOCK, None)
        else:
            state.armed[TRIGGER_CLOCK] = due
            state.timer_set(due)

    def segment_clock(self, segment_id: str) -> ClockRule:
        rule = self._segment_clocks.get(segment_id)
        if rule is None:
            rule = self._segment_clocks[segment_id] = segment_clock(segment_id, self.model)
        return rule

    def exit_clock(self, plan: JourneyPlan) -> ClockRule:
        rule = self._exit_clocks.get(plan.key)
        if rule is None:
            rule = ClockRule()
            for exit_rule in plan.condition_exits:
                rule |= condition_clock(exit_rule.condition, self.model)
            self._exit_clocks[plan.key] = rule
        return rule


def pending_change(state: CustomerState, entry: SegmentEntry, ctx: ScopeContext,
                   now: int) -> tuple[bool, str]:
    """Whether the engine's next check of the customer at `now` would see the segment
    change `entry` enters on, and why, in words (for `journeys explain`)."""
    member = CustomerView(state, now, ctx).in_segment(entry.segment)
    remembered = state.memberships.get(entry.segment)
    state_now = "in" if member else "not in"
    wanted = "enters" if entry.enters else "leaves"
    if remembered is None:
        return False, (f"{state_now} segment {entry.segment} now, but not watched yet: the "
                       "membership is recorded at the customer's next event, without "
                       "entering (first sight)")
    if bool(remembered) == member:
        return False, (f"{state_now} segment {entry.segment}, as at the last check: enters "
                       f"when the customer {wanted} it")
    return member == entry.enters, (
        f"{state_now} segment {entry.segment} now, "
        f"{'not in' if member else 'in'} it at the last check: the next check sees the "
        f"customer {'enter' if member else 'leave'} it")
