"""Experiments: the variant a split step draws for an enrollment, and its counters.

A split step sends each enrollment to one of its variants. The draw is a number in [0, 1)
fixed by the customer, the journey and the step (the holdout's draw with the step id
added), so a customer always gets the same variant of a split, also after a replay or a
re-entry, and two splits of a journey draw independently. The holdout follows a variant's
path too (silently), so that its customers who reached the split are the control.

The enrollment keeps the names of the variants it drew, comma-separated in the order of the
splits it passed (names are unique in a journey). Counters, under `<journey>@<version>|`:

- `split:<step>:<variant>` / `split_holdout:<step>:<variant>`: treated / holdout
  enrollments that drew the variant (once per enrollment and split);
- `variant_sent:<variant>`: messages sent to enrollments after they drew the variant;
- `goal_variant:<variant>` / `goal_holdout_variant:<variant>`: goals of treated / holdout
  enrollments that drew the variant, before or after the split.
"""

from __future__ import annotations

from collections import Counter

from engine.core.state import Enrollment
from journeys_dsl.plan import JourneyPlan, StepPlan, Variant

SEPARATOR = ","
"""Between the variant names an enrollment drew (names are ids: no comma)."""


def pick_variant(split: tuple[Variant, ...], draw: float) -> Variant:
    """The variant whose share of [0, 1) holds `draw`."""
    bound = 0.0
    for variant in split:
        bound += variant.share
        if draw < bound:
            return variant
    return split[-1]  # the shares' sum may round to just under 1


def variant_names(enrollment: Enrollment) -> list[str]:
    """The variants the enrollment drew, in the order of its splits."""
    drawn = enrollment.variant
    return drawn.split(SEPARATOR) if drawn else []


def split_step(plan: JourneyPlan, enrollment: Enrollment, step: StepPlan, draw: float,
               stats: Counter[str]) -> int:
    """Draw the enrollment's variant at a split step, record and count it; the index of the
    variant's target step."""
    variant = pick_variant(step.split, draw)
    drawn = variant_names(enrollment)
    if variant.name not in drawn:
        drawn.append(variant.name)
        enrollment.variant = SEPARATOR.join(drawn)
        key = plan.key
        group = "split_holdout" if enrollment.holdout else "split"
        stats[f"{key}|{group}:{step.step_id}:{variant.name}"] += 1
        if enrollment.goal_reached:  # converted before the split: counts for its variant
            goal = "goal_holdout_variant" if enrollment.holdout else "goal_variant"
            stats[f"{key}|{goal}:{variant.name}"] += 1
    return variant.target


def count_goal(journey_key: str, enrollment: Enrollment, stats: Counter[str]) -> None:
    """A goal of an enrollment that drew variants counts for each of them."""
    goal = "goal_holdout_variant" if enrollment.holdout else "goal_variant"
    for name in variant_names(enrollment):
        stats[f"{journey_key}|{goal}:{name}"] += 1


def count_sent(journey_key: str, enrollment: Enrollment, stats: Counter[str]) -> None:
    """A message sent to an enrollment that drew variants counts for each of them."""
    for name in variant_names(enrollment):
        stats[f"{journey_key}|variant_sent:{name}"] += 1
