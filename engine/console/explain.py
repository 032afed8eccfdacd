"""Why a customer would or would not enter a journey now, and what each step would do.

Nothing here re-implements the engine's rules. Conditions are evaluated by the journey's
compiled expressions on scopes built by `engine.core.scope.build_scope`; the entry itself and
every step after it are run by `engine.core.runtime.JourneyRuntime` (`enroll`, `fire_due`) on a
copy of the customer's state, and what the runtime counted (sent, capped, no consent,
delayed by quiet hours, skipped, holdout) is read back step by step. The stored state is
never written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.console.conditions import ConditionCheck, check_condition
from engine.core.dates import date_of
from engine.core.events import Event, parse_timestamp
from engine.core.runtime import Effects, JourneyRuntime, stable_fraction
from engine.core.scope import ScopeContext, build_scope
from engine.core.state import CustomerState, Enrollment
from engine.core.timeutil import DAY_MS, local_datetime
from engine.core.triggers import pending_change
from engine.reporting.labels import MISSING, timing_label
from journeys_dsl.broadcasts import describe as describe_broadcast
from journeys_dsl.channels import channel_spec
from journeys_dsl.date_timing import date_label
from journeys_dsl.durations import format_duration
from journeys_dsl.expressions import parse_expression
from journeys_dsl.plan import (
    END,
    AtDate,
    BroadcastEntry,
    DateEntry,
    DateFieldEntry,
    EventDateEntry,
    EventEntry,
    InactivityEntry,
    JourneyPlan,
    PAliveEntry,
    SegmentEntry,
    SendAction,
)
from journeys_dsl.policies import Minutes, Policies

MAX_STEPS_SIMULATED = 64
HORIZON_MS = 400 * DAY_MS
"""Steps further than this after the explanation's time are not simulated."""
ASSUMPTION = ("Steps ahead are run by the engine on a copy of the customer's state, "
              "assuming no further event from the customer (waits time out, no goal or "
              "exit is reached) and no message from other journeys meanwhile.")


@dataclass(frozen=True)
class Check:
    """One thing that decides whether the customer enters."""

    name: str
    passed: bool
    detail: str
    condition: ConditionCheck | None = None


@dataclass(frozen=True)
class MessageOutcome:
    channel: str
    result: str
    """"sent", "capped", "no_consent" or "unreachable"."""
    detail: str


@dataclass(frozen=True)
class StepOutcome:
    """What the engine did at one step of the simulated enrollment."""

    step_id: str
    timing: str
    at: int
    result: str
    """"ran", "skipped" (its `if` was false), "holdout", "event came" or "timed out"."""
    guard: ConditionCheck | None
    messages: tuple[MessageOutcome, ...]
    delayed: str | None
    """Why the step ran later than planned (quiet hours, a send window, a cap), or None."""
    next_step: str
    variant: str = ""
    """The variant a split step drew for the customer; empty for other steps."""


@dataclass(frozen=True)
class EnrollmentFacts:
    """The customer's current or last enrollment in the journey."""

    version: int
    seq: int
    entered_at: int
    holdout: bool
    step: str
    due_at: int | None
    ended_at: int | None
    end_reason: str | None
    goal_reached: bool
    variant: str | None = None
    """The variants drawn at split steps, comma-separated."""


@dataclass(frozen=True)
class JourneyExplanation:
    journey_key: str
    journey_name: str
    now: int
    verdict: str
    """"in_journey", "would_enter", "holdout" or "would_not_enter"."""
    summary: str
    checks: tuple[Check, ...]
    enrollment: EnrollmentFacts | None
    steps: tuple[StepOutcome, ...] = ()
    ending: str | None = None
    """How the simulated enrollment ends ("completed", "exit:..."), None if it goes on."""
    assumptions: tuple[str, ...] = field(default=())


class Explainer:
    """Explains journeys for customers with the runtime (and policies) the engine runs."""

    def __init__(self, runtime: JourneyRuntime, policies: Policies) -> None:
        self.runtime = runtime
        self.policies = policies

    def explain(self, state: CustomerState, plan: JourneyPlan, ctx: ScopeContext, now: int,
                sample: Event | None = None) -> JourneyExplanation:
        """Would the customer enter `plan` at `now`, and what would each step do.

        `sample` is the event an event-triggered entry is evaluated on (the customer's
        latest event of the entry's type); without one, `event.*` reads as missing.
        """
        current = state.enrollments.get(plan.journey_id)
        facts = _facts(current, self.runtime) if current is not None else None
        if current is not None and current.active:
            running = self.runtime.catalog.plan(current.journey, current.version) or plan
            step = facts.step if facts is not None else "?"
            due = f", next due {_when(current.due_at, state)}" if current.due_at else ""
            check = Check("already in the journey", False,
                          f"entered {_when(current.entered_at, state)} (version "
                          f"{current.version}), now at step {step}{due}; a customer is in a "
                          "journey once at a time")
            copy = _isolated_copy(state, running.journey_id, keep_armed=False)
            steps, ending = self._simulate(copy, running, ctx, now)
            holdout = " in the holdout (no messages)" if current.holdout else ""
            return JourneyExplanation(
                running.key, running.name, now, "in_journey",
                f"In the journey{holdout}, at step {step}.", (check,), facts, steps, ending,
                (ASSUMPTION,))
        copy = _isolated_copy(state, plan.journey_id, keep_armed=True,
                              segment=getattr(plan.entry, "segment", None))
        checks, entry_at = self._entry_checks(copy, plan, ctx, now, sample)
        if not all(check.passed for check in checks) or entry_at is None:
            failed = next(check for check in checks if not check.passed)
            return JourneyExplanation(plan.key, plan.name, now, "would_not_enter",
                                      f"Would not enter: {failed.name} ({failed.detail}).",
                                      tuple(checks), facts)
        sent_before = list(copy.sent_log)
        entered, effects = self._enter(copy, plan, ctx, entry_at, sample)
        if entered is None:
            checks.append(Check("the engine's entry", False,
                                "the runtime refused the entry for a reason not listed here"))
            return JourneyExplanation(plan.key, plan.name, now, "would_not_enter",
                                      "Would not enter.", tuple(checks), facts)
        in_holdout = entered.holdout
        checks.append(_holdout_check(state, plan, in_holdout))
        steps, ending = self._simulate(copy, plan, ctx, now, (entered, effects, sent_before))
        when = "now" if entry_at <= now else f"at {_when(entry_at, state)}"
        verdict = "holdout" if in_holdout else "would_enter"
        summary = (f"Would enter {when}, in the holdout: no messages." if in_holdout
                   else f"Would enter {when}{_messages_summary(steps)}.")
        return JourneyExplanation(plan.key, plan.name, now, verdict, summary, tuple(checks),
                                  facts, steps, ending, (ASSUMPTION,))

    # ------------------------------------------------------------------ entry
    def _entry_checks(self, state: CustomerState, plan: JourneyPlan, ctx: ScopeContext,
                      now: int, sample: Event | None) -> tuple[list[Check], int | None]:
        """The entry's checks, and when the entry would happen (None: it would not)."""
        entry = plan.entry
        checks: list[Check] = []
        at: int | None = now
        if isinstance(entry, EventEntry):
            if sample is None:
                checks.append(Check(
                    f"a {entry.event_type} event", entry.condition is None or not _reads_event(
                        entry.condition.source),
                    f"enters on a {entry.event_type} event; none in the customer's recent "
                    "timeline, so event fields read as missing"))
            else:
                checks.append(Check(f"a {entry.event_type} event", True,
                                    f"evaluated on the customer's latest {entry.event_type} "
                                    f"event, of {_when(sample.ts, state)}"))
            venue = (sample.data.get("venue_id") if sample is not None else None) \
                or state.profile.last_venue_id
            scope = build_scope(state, now, ctx, event=sample, venue_id=venue)
            if entry.condition is not None:
                result = check_condition(entry.condition, scope)
                checks.append(Check("entry condition", result.passed,
                                    _condition_detail(result), result))
        elif isinstance(entry, SegmentEntry):
            passed, detail = pending_change(state, entry, ctx, now)
            checks.append(Check(f"segment change ({'enters' if entry.enters else 'leaves'} "
                                f"{entry.segment})", passed, detail))
            if entry.condition is not None:
                scope = build_scope(state, now, ctx, venue_id=state.profile.last_venue_id)
                result = check_condition(entry.condition, scope)
                checks.append(Check("entry condition", result.passed,
                                    _condition_detail(result), result))
        else:
            armed = state.armed.get(plan.journey_id)
            checks.extend(self._timed_checks(state, plan, armed))
            at = armed
            condition = entry.condition
            if condition is not None and not isinstance(entry, EventDateEntry):
                dated = isinstance(entry, DateEntry | DateFieldEntry | BroadcastEntry)
                check_at = armed if dated and armed else now
                scope = build_scope(state, check_at, ctx, venue_id=state.profile.last_venue_id)
                result = check_condition(condition, scope)
                checks.append(Check("entry condition", result.passed,
                                    _condition_detail(result), result))
        checks.append(self._re_entry_check(state, plan, at if at is not None else now))
        return checks, at

    def _timed_checks(self, state: CustomerState, plan: JourneyPlan,
                      armed: int | None) -> Iterable[Check]:
        entry = plan.entry
        profile = state.profile
        if isinstance(entry, DateEntry):
            date = profile.birthday if entry.kind == "birthday" else profile.first_visit_at
            what = "birthday" if entry.kind == "birthday" else "first visit"
            yield Check(f"{what} in the profile", date is not None,
                        f"{what}: {date if isinstance(date, str) else _when(date, state)}"
                        if date is not None else f"the profile has no {what}")
        if isinstance(entry, DateFieldEntry):
            value = date_of(entry.date, state)
            shown = value if isinstance(value, str) or value is None else _when(value, state)
            yield Check(f"{entry.date.source} in the profile", value is not None,
                        f"{entry.date.source}: {shown}" if value is not None
                        else f"the profile has no {entry.date.source}")
        if isinstance(entry, InactivityEntry):
            description = f"{format_duration(entry.after_s)} without a visit"
        elif isinstance(entry, PAliveEntry):
            description = f"p_alive falling under {entry.threshold}"
        elif isinstance(entry, DateEntry):
            description = f"the yearly {entry.kind.replace('_', ' ')}"
        elif isinstance(entry, SegmentEntry):
            description = f"a change of segment {entry.segment}"
        elif isinstance(entry, DateFieldEntry):
            shift = date_label(AtDate(entry.date, entry.offset_s, entry.local_time))
            description = f"{'every year ' if entry.yearly else ''}{shift}"
        elif isinstance(entry, EventDateEntry):
            description = f"{date_label(entry.at)} of the latest {entry.event_type} event"
        elif isinstance(entry, BroadcastEntry):
            description = describe_broadcast(entry)
        else:
            description = f"a {entry.event_type} event"
        if armed is not None:
            yield Check("entry timer", True,
                        f"armed for {description}: fires {_when(armed, state)}")
        elif isinstance(entry, BroadcastEntry):
            yield Check("entry timer", False,
                        f"not armed: {description}; a shard arms the customers it holds at "
                        "the UTC midnight before the first zone reaches that time")
        else:
            yield Check("entry timer", False,
                        f"not armed: the entry ({description}) was not started by the "
                        "customer's events, or its condition was false when they came")

    def _re_entry_check(self, state: CustomerState, plan: JourneyPlan, at: int) -> Check:
        previous = state.enrollments.get(plan.journey_id)
        if previous is None:
            return Check("re-entry", True, "never in this journey before")
        rule = plan.re_entry
        ended = previous.ended_at or previous.entered_at
        last = f"last enrollment ended {_when(ended, state)}"
        if rule.mode == "never":
            return Check("re-entry", False, f"the journey allows one entry ({last})")
        if rule.mode == "after" and at < ended + rule.after_s * 1000:
            return Check("re-entry", False,
                         f"re-entry only {format_duration(rule.after_s)} after the last one ended "
                         f"({last}): not before {_when(ended + rule.after_s * 1000, state)}")
        return Check("re-entry", True, f"allowed ({last})")

    def _enter(self, state: CustomerState, plan: JourneyPlan, ctx: ScopeContext,
               at: int, sample: Event | None = None) -> tuple[Enrollment | None, Effects]:
        """Enter `plan` on the copy at `at` by the runtime: the new enrollment (None: the
        runtime refused) and what the entry's first steps did (timed by the dates of
        `sample`, the entry event)."""
        before = state.enrollments.get(plan.journey_id)
        seq = before.seq if before is not None else 0
        effects = Effects()
        if isinstance(plan.entry, SegmentEntry):
            self.runtime.enroll(state, plan, at, ctx, effects)
        elif isinstance(plan.entry, EventEntry):
            self.runtime.enroll(state, plan, at, ctx, effects, event=sample)
        else:  # the engine fires the armed timer, which checks and enters
            self.runtime.fire_due(state, at, ctx, effects)
        enrollment = state.enrollments.get(plan.journey_id)
        if enrollment is None or enrollment.seq == seq:
            return None, effects
        return enrollment, effects

    # ------------------------------------------------------------------ steps
    def _simulate(self, state: CustomerState, plan: JourneyPlan, ctx: ScopeContext, now: int,
                  entry: tuple[Enrollment, Effects, list[list[Any]]] | None = None
                  ) -> tuple[tuple[StepOutcome, ...], str | None]:
        """Run the enrollment's steps on the copy, timer after timer, and say what each did
        (first the steps `entry` ran at once, when given)."""
        outcomes: list[StepOutcome] = []
        if entry is not None:
            entered, first, sent_before = entry
            outcomes.extend(self._outcomes(state, plan, first, entered.entered_at,
                                           sent_before, {}))
        for _ in range(MAX_STEPS_SIMULATED):
            enrollment = state.enrollments.get(plan.journey_id)
            if enrollment is None or not enrollment.active or enrollment.due_at is None:
                break
            due = enrollment.due_at
            if due > now + HORIZON_MS:
                break
            step = plan.steps[enrollment.step]
            guard = None
            if step.guard is not None:
                scope = build_scope(state, due, ctx, venue_id=state.profile.last_venue_id,
                                    enrollment=enrollment, step_id=step.step_id)
                guard = check_condition(step.guard, scope)
            sent_before = list(state.sent_log)
            effects = Effects()
            self.runtime.fire_due(state, due, ctx, effects)
            outcomes.extend(self._outcomes(state, plan, effects, due, sent_before,
                                           {step.step_id: guard} if guard else {}))
        enrollment = state.enrollments.get(plan.journey_id)
        ending = enrollment.end_reason if enrollment is not None else None
        return tuple(outcomes), ending

    def _outcomes(self, state: CustomerState, plan: JourneyPlan, effects: Effects, at: int,
                  sent_before: list[list[Any]],
                  guards: dict[str, ConditionCheck]) -> list[StepOutcome]:
        """The steps one runtime call ran, from what it counted, in the order it counted."""
        prefix = plan.key + "|"
        sends = {(c["step"], c["channel"]): parse_timestamp(c["send_at"])[0]
                 for c in effects.commands}
        order: list[str] = []
        result: dict[str, str] = {}
        messages: dict[str, list[MessageOutcome]] = {}
        delayed: dict[str, str] = {}
        targets: dict[str, str] = {}
        variants: dict[str, str] = {}
        for name in effects.stats:
            if not name.startswith(prefix):
                continue
            kind, _, rest = name[len(prefix):].partition(":")
            step_id, _, extra = rest.partition(":")
            if kind in ("reached", "skipped", "holdout", "wait_met", "wait_timeout"):
                order.append(step_id)
                result[step_id] = {"reached": "ran", "wait_met": "event came",
                                   "wait_timeout": "timed out"}.get(kind, kind)
            elif kind in ("sent", "capped", "no_consent", "unreachable"):
                detail = (f"send at {_when(sends[(step_id, extra)], state)}"
                          if kind == "sent" and (step_id, extra) in sends
                          else self._refusal_detail(state, kind, extra, at, sent_before))
                messages.setdefault(step_id, []).append(MessageOutcome(extra, kind, detail))
            elif kind == "quiet_delayed":
                delayed[step_id] = self._delay_detail(state, plan, step_id)
            elif kind == "edge":
                targets[step_id] = extra
            elif kind in ("split", "split_holdout"):
                variants[step_id] = extra
        steps_by_id = {step.step_id: step for step in plan.steps}
        return [StepOutcome(step_id, timing_label(steps_by_id[step_id])
                            if step_id in steps_by_id else "", at, result[step_id],
                            guards.get(step_id), tuple(messages.get(step_id, ())),
                            delayed.get(step_id), targets.get(step_id, ""),
                            variants.get(step_id, ""))
                for step_id in order]

    def _refusal_detail(self, state: CustomerState, kind: str, channel: str, at: int,
                        sent_before: list[list[Any]]) -> str:
        """The values a consent, address or cap refusal read."""
        profile = state.profile
        policies = self.policies
        if kind == "unreachable":
            spec = channel_spec(channel)
            field = spec.address_field if spec is not None and spec.address_field else "address"
            return f"no {channel} address: the profile has no {field}"
        if kind == "no_consent":
            if channel in profile.unsubscribed:
                return f"unsubscribed from {channel}"
            consent = profile.consents.get(channel)
            if consent is False:
                return f"consents.{channel} = false"
            return (f"consent policy opt_in and consents.{channel} is "
                    f"{'missing' if consent is None else consent}")
        cap = policies.cap
        if cap is None:
            return "capped"
        window = cap.per_s * 1000
        recent = [entry for entry in sent_before if entry[0] > at - window]
        limits = []
        if cap.max_messages is not None:
            limits.append(f"{len(recent)} of at most {cap.max_messages} messages")
        limit = cap.channels.get(channel)
        if limit is not None:
            on_channel = sum(1 for entry in recent if entry[1] == channel)
            limits.append(f"{on_channel} of at most {limit} on {channel}")
        return f"frequency cap: {' and '.join(limits)} in the last {format_duration(cap.per_s)}"

    def _delay_detail(self, state: CustomerState, plan: JourneyPlan, step_id: str) -> str:
        """The windows that moved a step later: quiet hours, send windows, a delaying cap."""
        policies = self.policies
        step = next(s for s in plan.steps if s.step_id == step_id)
        channels = [a.channel for a in step.actions if isinstance(a, SendAction)]
        reasons = []
        if policies.quiet_hours is not None:
            reasons.append(f"quiet hours {_window(policies.quiet_hours)}")
        for channel in channels:
            window = policies.window_for(channel)
            if window is not None:
                reasons.append(f"{channel} window {_window(window)}")
        if policies.cap is not None and policies.cap.when_capped == "delay":
            reasons.append(f"frequency cap (delay): at most {policies.cap.max_messages} per "
                           f"{format_duration(policies.cap.per_s)}")
        zone = state.profile.timezone or "UTC"
        return f"delayed by {', '.join(reasons) or 'the policies'} in {zone}"


def _holdout_check(state: CustomerState, plan: JourneyPlan, in_holdout: bool) -> Check:
    """The holdout draw the runtime made, with the number it drew."""
    if plan.holdout <= 0:
        return Check("holdout", True, "the journey has no holdout")
    draw = stable_fraction(state.customer_id, plan.journey_id)
    if in_holdout:
        return Check("holdout", False, f"the customer's draw {draw:.4f} is under the holdout "
                     f"share {plan.holdout:.2f}: enters the holdout, which gets no messages")
    return Check("holdout", True, f"the customer's draw {draw:.4f} is not under the holdout "
                 f"share {plan.holdout:.2f}: treated")


def _messages_summary(steps: tuple[StepOutcome, ...]) -> str:
    """", but no message would go out (no consent)" when messages are held back."""
    outcomes = [message for step in steps for message in step.messages]
    held = [m for m in outcomes if m.result != "sent"]
    if not held:
        return ""
    reasons = ", ".join(sorted({m.result.replace("_", " ") for m in held}))
    sent = len(outcomes) - len(held)
    if not sent:
        return f", but no message would go out ({reasons})"
    return f", but {len(held)} of {len(outcomes)} messages would be held back ({reasons})"


def _facts(enrollment: Enrollment, runtime: JourneyRuntime) -> EnrollmentFacts:
    plan = runtime.catalog.plan(enrollment.journey, enrollment.version)
    if enrollment.step == END:
        step = "end"
    elif plan is not None and 0 <= enrollment.step < len(plan.steps):
        step = plan.steps[enrollment.step].step_id
    else:
        step = str(enrollment.step)
    return EnrollmentFacts(enrollment.version, enrollment.seq, enrollment.entered_at,
                           enrollment.holdout, step, enrollment.due_at, enrollment.ended_at,
                           enrollment.end_reason, enrollment.goal_reached, enrollment.variant)


def _isolated_copy(state: CustomerState, journey_id: str, *, keep_armed: bool,
                   segment: str | None = None) -> CustomerState:
    """A copy of the state whose only timer is the journey's (its enrollment's, and its
    armed entry when `keep_armed`), so that firing timers runs this journey alone; of the
    segment memberships, only that of `segment` (the journey's segment entry) is kept, so
    that no other journey enters on a segment change."""
    copy = CustomerState.from_bytes(state.customer_id, state.to_bytes())
    copy.memberships = {k: v for k, v in copy.memberships.items() if k == segment}
    copy.armed = {k: v for k, v in copy.armed.items() if keep_armed and k == journey_id}
    for other, enrollment in copy.enrollments.items():
        if other != journey_id:
            enrollment.due_at = None
    return copy


def _reads_event(source: str) -> bool:
    """Whether a condition reads a field of the event."""
    return any(ref.root == "event" for ref in parse_expression(source).refs)


def _condition_detail(result: ConditionCheck) -> str:
    if result.passed:
        return "holds"
    failing = result.failing if result.joiner == "and" else ()
    if failing:
        return "does not hold: " + "; ".join(part.source for part in failing)
    return "does not hold"


def _window(window: Minutes) -> str:
    start, end = window
    return f"{start // 60:02d}:{start % 60:02d} to {end // 60:02d}:{end % 60:02d}"


def _when(ts: int | None, state: CustomerState) -> str:
    """A time in the customer's zone, e.g. 2025-03-10 09:00 Europe/Paris."""
    if ts is None:
        return MISSING
    zone = state.profile.timezone or "UTC"
    return f"{local_datetime(ts, zone):%Y-%m-%d %H:%M} {zone}"
