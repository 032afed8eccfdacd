"""Experiments in reports: each split step's variants, their conversion and a plain reading.

From the counters of `engine.core.experiments`: per variant, the treated customers who drew
it, the messages sent to them after the draw and their goals; the control is the holdout's
customers who reached the same split (they draw a variant too, and get nothing).

The reading, with every interval at 95%:

- "sample too small" while a variant has fewer than `MIN_CUSTOMERS` customers, or the
  variants together fewer than `MIN_CONVERSIONS` conversions;
- "<variant> wins" when the Newcombe interval of its rate minus each other variant's lies
  above zero (with three variants or more, each pair is tested alone: the more variants,
  the likelier a false winner);
- "no difference yet" otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from engine.reporting.intervals import wilson
from engine.reporting.model import Conversion, Experiment, VariantComparison, VariantStats
from journeys_dsl.plan import END, JourneyPlan

COUNTERS = ("split", "split_holdout", "variant_sent", "goal_variant", "goal_holdout_variant")
"""The counter kinds (before the first `:`) experiments own."""
MIN_CUSTOMERS = 100
"""Customers each variant needs before the report names a winner."""
MIN_CONVERSIONS = 10
"""Conversions the variants need together before the report names a winner."""


def build_experiments(counters: Mapping[str, int], plan: JourneyPlan | None,
                      has_goal: bool) -> list[Experiment]:
    """One experiment per split step: the plan's, in plan order, then any known from the
    counters only (`counters` are the journey's experiment counters, `kind:detail`)."""
    planned: dict[str, list[tuple[str, str, float | None]]] = {}
    if plan is not None:
        for step in plan.steps:
            if step.split:
                planned[step.step_id] = [
                    (v.name, "end" if v.target == END else plan.steps[v.target].step_id,
                     v.share) for v in step.split]
    treated: dict[str, dict[str, int]] = defaultdict(dict)
    control: dict[str, dict[str, int]] = defaultdict(dict)
    by_name: dict[str, int] = defaultdict(int)
    for counter, count in counters.items():
        kind, _, detail = counter.partition(":")
        if kind in ("split", "split_holdout"):
            step_id, _, name = detail.partition(":")
            groups = treated if kind == "split" else control
            groups[step_id][name] = groups[step_id].get(name, 0) + count
        else:
            by_name[f"{kind}:{detail}"] += count
    for step_id in sorted(set(treated) | set(control)):
        if step_id not in planned:
            names = sorted(set(treated[step_id]) | set(control[step_id]))
            planned[step_id] = [(name, "", None) for name in names]
    return [_experiment(step_id, arms, treated[step_id], control[step_id], by_name, has_goal)
            for step_id, arms in planned.items()]


def _experiment(step_id: str, arms: list[tuple[str, str, float | None]],
                treated: Mapping[str, int], control: Mapping[str, int],
                by_name: Mapping[str, int], has_goal: bool) -> Experiment:
    holdout = sum(control.values())
    holdout_goals = sum(by_name.get(f"goal_holdout_variant:{name}", 0) for name, *_ in arms)
    holdout_goals = min(holdout_goals, holdout)
    variants = []
    for name, target, share in arms:
        entered = treated.get(name, 0)
        goals = min(by_name.get(f"goal_variant:{name}", 0), entered)
        versus = (VariantComparison(name, "holdout", conversion(entered, goals, holdout,
                                                                 holdout_goals))
                  if has_goal else None)
        variants.append(VariantStats(
            name, target, share, entered, by_name.get(f"variant_sent:{name}", 0), goals,
            goals / entered if has_goal and entered else None,
            wilson(goals, entered) if has_goal and entered else None, versus))
    comparisons = [VariantComparison(later.variant, earlier.variant,
                                     conversion(later.entered, later.goals, earlier.entered,
                                                earlier.goals))
                   for index, later in enumerate(variants) for earlier in variants[:index]
                   ] if has_goal else []
    verdict, winner, reading = _reading(variants, comparisons, has_goal)
    return Experiment(step_id, variants, holdout, holdout_goals,
                      holdout_goals / holdout if has_goal and holdout else None,
                      wilson(holdout_goals, holdout) if has_goal and holdout else None,
                      comparisons, verdict, winner, reading)


def conversion(entered: int, goals: int, other: int, other_goals: int) -> Conversion:
    """`stats.conversion` (imported here, where it is used, to keep the modules acyclic)."""
    from engine.reporting.stats import conversion as two_groups
    return two_groups(entered, goals, other, other_goals)


def _reading(variants: list[VariantStats], comparisons: list[VariantComparison],
             has_goal: bool) -> tuple[str, str | None, str]:
    """The verdict, the winner (or None) and the reading in words."""
    if not has_goal:
        return "no_goal", None, "the journey has no goal: variants are counted, not compared"
    small = [v.variant for v in variants if v.entered < MIN_CUSTOMERS]
    conversions = sum(v.goals for v in variants)
    if small or conversions < MIN_CONVERSIONS:
        why = (f"{', '.join(small)} {'has' if len(small) == 1 else 'have'} fewer than "
               f"{MIN_CUSTOMERS} customers" if small
               else f"the variants have {conversions} conversions, fewer than "
                    f"{MIN_CONVERSIONS}")
        return "too_small", None, f"sample too small: {why}"
    for variant in variants:
        wins = [_against(c, variant.variant) for c in comparisons
                if variant.variant in (c.variant, c.other)]
        if wins and all(low > 0 for low, _, _ in wins):
            best = min(wins)
            low, high, other = best
            lift = (variant.rate or 0.0) - next(v.rate or 0.0 for v in variants
                                               if v.variant == other)
            return "winner", variant.variant, (
                f"{variant.variant} wins: it converts {lift * 100:.1f} points more than "
                f"{other} (95% CI {low * 100:+.1f} to {high * 100:+.1f} pp)"
                + (", and beats every other variant" if len(wins) > 1 else ""))
    return "no_difference", None, ("no difference yet: the 95% CI of the difference between "
                                   "the variants spans 0" if len(variants) == 2 else
                                   "no difference yet: no variant beats every other one with "
                                   "95% confidence")


def _against(comparison: VariantComparison, variant: str) -> tuple[float, float, str]:
    """The interval of `variant`'s rate minus the other's, and the other's name."""
    ci = comparison.result.ci
    low, high = (ci.low, ci.high) if ci is not None else (0.0, 0.0)
    if comparison.variant == variant:
        return low, high, comparison.other
    return -high, -low, comparison.variant
