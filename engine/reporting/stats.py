"""From the engine's counters (`<journey>@<version>|<counter>` -> count) to report models."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from engine.reporting.errors import CounterError
from engine.reporting.experiments import COUNTERS as EXPERIMENT_COUNTERS
from engine.reporting.experiments import build_experiments
from engine.reporting.intervals import newcombe
from engine.reporting.labels import timing_label
from engine.reporting.model import (
    Conversion,
    Edge,
    JourneyReport,
    Report,
    RunFacts,
    SegmentConversion,
    StepStats,
    VoucherStats,
    WeekEntries,
)
from journeys_dsl.plan import END, JourneyPlan, WaitFor

SEGMENT_ORDER = ("new", "regular", "loyal", "sleeping", "occasional", "none")
ENDINGS = ("completed", "step_limit", "version_missing")
NOT_SENT = ("no_consent", "unreachable", "capped")


def conversion(treated: int, treated_goals: int, holdout: int, holdout_goals: int) -> Conversion:
    """Rates, lift (absolute and relative) and the 95% CI of the difference of the rates."""
    for name, goals, entered in (("treated", treated_goals, treated),
                                 ("holdout", holdout_goals, holdout)):
        if entered < 0 or not 0 <= goals <= max(entered, goals):
            raise CounterError(name, f"{goals} goals for {entered} entries")
    treated_rate = treated_goals / treated if treated else None
    holdout_rate = holdout_goals / holdout if holdout else None
    if treated_rate is None or holdout_rate is None:
        verdict = "no_entries" if treated_rate is None else "no_holdout"
        return Conversion(treated, treated_goals, holdout, holdout_goals, treated_rate,
                          holdout_rate, None, None, None, verdict)
    # A goal counted more often than entries (re-entries) caps the rate at 100%.
    ci = newcombe(min(treated_goals, treated), treated, min(holdout_goals, holdout), holdout)
    lift = treated_rate - holdout_rate
    relative = lift / holdout_rate if holdout_rate > 0 else None
    if ci.low > 0:
        verdict = "lift"
    elif ci.high < 0:
        verdict = "negative"
    else:
        verdict = "no_significant_lift"
    return Conversion(treated, treated_goals, holdout, holdout_goals, treated_rate, holdout_rate,
                      lift, relative, ci, verdict)


def reading(result: Conversion) -> str:
    """The conversion in plain words."""
    if result.verdict == "no_entries":
        return "no treated customer entered"
    if result.verdict == "no_holdout":
        return "no holdout to compare with: lift cannot be measured"
    assert result.ci is not None and result.lift is not None
    bounds = f"{result.ci.low * 100:+.1f} to {result.ci.high * 100:+.1f} points"
    span = f"95% CI {bounds}"
    if result.verdict == "lift":
        return (f"significant lift: treated customers convert {result.lift * 100:.1f} points "
                f"more than the holdout ({span})")
    if result.verdict == "negative":
        return (f"significantly worse: treated customers convert {-result.lift * 100:.1f} "
                f"points less than the holdout ({span})")
    return f"no significant lift: the 95% CI of the lift, {bounds}, spans 0"


def split_counters(stats: Mapping[str, int]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Journey counters grouped by `journey@version`, and the chain-level rest."""
    journeys: dict[str, dict[str, int]] = defaultdict(dict)
    chain: dict[str, int] = {}
    for name, count in stats.items():
        key, sep, counter = name.partition("|")
        if sep and "@" in key and counter:
            journeys[key][counter] = journeys[key].get(counter, 0) + int(count)
        else:
            chain[name] = int(count)
    return dict(journeys), chain


def build_report(stats: Mapping[str, int], plans: Sequence[JourneyPlan],
                 facts: RunFacts) -> Report:
    """A report of every planned journey version and every version seen in the counters."""
    grouped, chain = split_counters(stats)
    by_key = {plan.key: plan for plan in plans}
    keys = sorted(set(by_key) | set(grouped), key=_journey_order)
    journeys = [journey_report(key, grouped.get(key, {}), by_key.get(key)) for key in keys]
    return Report(facts, journeys, dict(sorted(chain.items())))


def _journey_order(key: str) -> tuple[str, int, str]:
    journey_id, _, version = key.partition("@")
    return journey_id, int(version) if version.isdigit() else 1 << 30, version


def journey_report(key: str, counters: Mapping[str, int],
                   plan: JourneyPlan | None) -> JourneyReport:
    """One journey version's report from its counters (without the `key|` part)."""
    journey_id, _, version = key.partition("@")
    report = JourneyReport(
        key=key, journey_id=journey_id, version=version,
        name=plan.name if plan else journey_id, in_plan=plan is not None,
        has_goal=plan.goal is not None if plan else _any(counters, "goal"),
    )
    steps: dict[str, StepStats] = {}
    if plan is not None:
        for planned in plan.steps:
            steps[planned.step_id] = StepStats(planned.step_id, timing_label(planned),
                                               waits=isinstance(planned.timing, WaitFor))
            if planned.split:
                steps[planned.step_id].split = " · ".join(
                    f"{v.name} {v.share:.0%}" for v in planned.split)
    weeks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    segments: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    issued: dict[str, int] = dict.fromkeys(plan.offers, 0) if plan else {}
    redeemed: dict[str, int] = {}
    unreached: dict[str, int] = {}
    withheld: dict[str, int] = {}
    conditions = edge_conditions(plan) if plan is not None else {}
    edges: list[Edge] = []
    goals = [0, 0]
    experiment_counters: dict[str, int] = {}

    def step_of(step_id: str) -> StepStats:
        if step_id not in steps:
            steps[step_id] = StepStats(step_id, in_plan=False)
        return steps[step_id]

    for counter, count in sorted(counters.items()):
        kind, _, detail = counter.partition(":")
        parts = detail.split(":") if detail else []
        if counter == "entered":
            report.entered += count
        elif counter == "entered_holdout":
            report.entered_holdout += count
        elif kind in ("entered_week", "entered_holdout_week"):
            weeks[detail][kind == "entered_holdout_week"] += count
        elif kind in ("entered_segment", "entered_holdout_segment", "goal_segment",
                      "goal_holdout_segment"):
            index = ("entered_segment", "goal_segment", "entered_holdout_segment",
                     "goal_holdout_segment").index(kind)
            segments[detail][index] += count
        elif counter in ("goal", "goal_holdout"):
            goals[counter == "goal_holdout"] += count
        elif kind in ("reached", "holdout", "skipped", "wait_met", "wait_timeout") and detail:
            target = step_of(detail)
            setattr(target, kind, getattr(target, kind) + count)
            target.waits = target.waits or kind.startswith("wait_")
        elif kind == "sent" and len(parts) == 2:
            sent = step_of(parts[0]).sent
            sent[parts[1]] = sent.get(parts[1], 0) + count
        elif kind in NOT_SENT and len(parts) == 2:
            held = step_of(parts[0]).not_sent
            held[f"{kind}:{parts[1]}"] = held.get(f"{kind}:{parts[1]}", 0) + count
        elif kind == "quiet_delayed" and detail:
            step_of(detail).delayed += count
        elif kind == "edge" and len(parts) == 2:
            step_of(parts[0])
            if parts[1] != "end":
                step_of(parts[1])
            edges.append(Edge(parts[0], parts[1], count,
                              conditions.get((parts[0], parts[1]), "")))
        elif kind == "voucher_issued" and detail:
            issued[detail] = issued.get(detail, 0) + count
        elif kind == "voucher_redeemed" and detail:
            redeemed[detail] = redeemed.get(detail, 0) + count
        elif kind == "voucher_unreached" and detail:
            unreached[detail] = unreached.get(detail, 0) + count
        elif kind == "voucher_withheld" and detail:
            withheld[detail] = withheld.get(detail, 0) + count
        elif kind == "voucher_rejected" and detail:
            report.rejected[detail] = report.rejected.get(detail, 0) + count
        elif kind in EXPERIMENT_COUNTERS and detail:
            experiment_counters[counter] = count
        elif counter in ENDINGS or (kind == "exit" and detail):
            report.endings[counter] = report.endings.get(counter, 0) + count
        else:
            report.details[counter] = count
    report.steps = _ordered_steps(steps, edges, plan is not None)
    report.edges = edges
    report.weeks = [WeekEntries(week, *weeks[week]) for week in sorted(weeks)]
    offers = [*issued, *sorted((set(redeemed) | set(withheld) | set(unreached)) - set(issued))]
    report.vouchers = [VoucherStats(offer, issued.get(offer, 0), redeemed.get(offer, 0),
                                    unreached.get(offer, 0), withheld.get(offer, 0))
                       for offer in offers]
    if report.has_goal:
        report.conversion = conversion(report.entered, goals[0], report.entered_holdout,
                                       goals[1])
        report.segments = [
            SegmentConversion(name, conversion(*segments[name]))
            for name in sorted(segments, key=_segment_order)
        ]
    elif goals[0] or goals[1]:
        report.details.update({"goal": goals[0], "goal_holdout": goals[1]})
    if experiment_counters or (plan is not None and plan.variant_steps):
        report.experiments = build_experiments(experiment_counters, plan, report.has_goal)
    return report


def edge_conditions(plan: JourneyPlan) -> dict[tuple[str, str], str]:
    """Why customers move from a step to another, by (step id, target step id or "end"):
    the branch arms' conditions as written, "else", "otherwise" for a step whose arms all
    fail, and for a wait "event came" and "timed out"."""
    def name(index: int) -> str:
        return "end" if index == END else plan.steps[index].step_id

    conditions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for step in plan.steps:
        for branch in step.branches:
            words = "else" if branch.condition is None else f"if {branch.condition.source}"
            conditions[(step.step_id, name(branch.target))].append(words)
        if step.branches and all(b.condition is not None for b in step.branches):
            conditions[(step.step_id, name(step.next_index))].append("otherwise")
        for variant in step.split:
            conditions[(step.step_id, name(variant.target))].append(
                f"variant {variant.name} ({variant.share:.0%})")
        if isinstance(step.timing, WaitFor):
            conditions[(step.step_id, name(step.next_index))].append(
                f"{step.timing.event_type} came")
            conditions[(step.step_id, name(step.timing.on_timeout))].append("timed out")
    return {key: " or ".join(dict.fromkeys(arms)) for key, arms in conditions.items()}


def _any(counters: Mapping[str, int], prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + "_") for name in counters)


def _segment_order(name: str) -> tuple[int, str]:
    return (SEGMENT_ORDER.index(name) if name in SEGMENT_ORDER else len(SEGMENT_ORDER), name)


def _ordered_steps(steps: dict[str, StepStats], edges: Sequence[Edge],
                   planned: bool) -> list[StepStats]:
    """Planned steps in plan order, then steps known from counters only.

    Without a plan the order follows the edges from the steps nobody moves to, falling back
    on the most-run steps first.
    """
    if planned:
        return list(steps.values())
    incoming = {edge.target for edge in edges if edge.source != edge.target}
    following: dict[str, list[str]] = defaultdict(list)
    for edge in sorted(edges, key=lambda e: -e.count):
        following[edge.source].append(edge.target)

    def traffic(s: StepStats) -> int:
        return s.reached + s.holdout + s.skipped

    pending = sorted(steps.values(), key=lambda s: (s.step_id in incoming, -traffic(s)))
    order: list[str] = []

    def visit(step_id: str) -> None:
        if step_id in order or step_id not in steps:
            return
        order.append(step_id)
        for target in following.get(step_id, []):
            visit(target)

    for candidate in pending:
        visit(candidate.step_id)
    return [steps[step_id] for step_id in order]
