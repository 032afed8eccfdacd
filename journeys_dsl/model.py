"""The validated model of a journey file: what the parser produces and the compiler reads.

It holds the plan's own objects wherever nothing needs resolving, and keeps step
references by name (with their place in the file) until the compiler turns them into
step indices.
"""

from __future__ import annotations

from dataclasses import dataclass

from journeys_dsl import plan

END_NAME = "end"
"""The step reference meaning "the journey is complete"."""


@dataclass(frozen=True)
class StepRef:
    """A reference to a step by id (or `end`), where it is written."""

    name: str
    line: int
    col: int
    path: str


@dataclass(frozen=True)
class WaitForSpec:
    event_type: str
    condition: plan.Expression | None
    timeout_s: int
    on_timeout: StepRef | None


@dataclass(frozen=True)
class BranchSpec:
    condition: plan.Expression | None
    target: StepRef


TimingSpec = plan.Immediate | plan.AtTime | plan.After | WaitForSpec | plan.AtDate


@dataclass(frozen=True)
class VariantSpec:
    """A split's arm as written: its weight is relative to the other arms'."""

    name: str
    weight: float
    target: StepRef


@dataclass(frozen=True)
class StepSpec:
    step_id: str
    line: int
    col: int
    path: str
    timing: TimingSpec
    guard: plan.Expression | None
    actions: tuple[plan.Action, ...]
    branches: tuple[BranchSpec, ...]
    next: StepRef | None
    split: tuple[VariantSpec, ...] = ()

    @property
    def has_else(self) -> bool:
        return any(branch.condition is None for branch in self.branches)


@dataclass(frozen=True)
class JourneySpec:
    journey_id: str
    version: int
    name: str
    description: str
    entry: plan.Entry
    re_entry: plan.ReEntry
    holdout: float
    goal: plan.Goal | None
    exits: tuple[plan.ExitRule, ...]
    offers: tuple[plan.OfferPlan, ...]
    steps: tuple[StepSpec, ...]
    id_line: int = 1
    id_col: int = 1
    condition_exits: tuple[plan.ConditionExit, ...] = ()
