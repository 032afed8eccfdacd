"""The report's data model: plain dataclasses, serialisable with `dataclasses.asdict`."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.reporting.intervals import Interval


@dataclass(frozen=True)
class Conversion:
    """Goal conversion of treated customers against the holdout, with the lift's 95% CI.

    `lift` is the absolute difference of the rates (treated - holdout), `relative_lift` that
    difference over the holdout rate; `ci` is Newcombe's interval of the difference.
    """

    treated: int
    treated_goals: int
    holdout: int
    holdout_goals: int
    treated_rate: float | None
    holdout_rate: float | None
    lift: float | None
    relative_lift: float | None
    ci: Interval | None
    verdict: str
    """One of: "lift", "negative", "no_significant_lift", "no_holdout", "no_entries"."""


@dataclass(frozen=True)
class SegmentConversion:
    segment: str
    conversion: Conversion


@dataclass(frozen=True)
class VariantComparison:
    """A variant's conversion against another variant's or the holdout's: `result` reads
    `variant` as its "treated" side and `other` as its "holdout" side."""

    variant: str
    other: str
    """A variant name, or "holdout"."""
    result: Conversion


@dataclass(frozen=True)
class VariantStats:
    """One arm of an experiment: its customers, messages and goal conversion."""

    variant: str
    target: str
    """The step the variant goes to, or "end"."""
    share: float | None
    """The share the journey gives it (None: known from the counters only)."""
    entered: int
    """Treated enrollments that drew the variant."""
    messages: int
    """Messages sent to them after the draw."""
    goals: int
    rate: float | None
    ci: Interval | None
    """The 95% Wilson interval of the rate."""
    vs_holdout: VariantComparison | None


@dataclass(frozen=True)
class Experiment:
    """A split step's variants against each other and against the holdout (the control:
    the holdout's customers who reached the split)."""

    step_id: str
    variants: list[VariantStats]
    holdout: int
    holdout_goals: int
    holdout_rate: float | None
    holdout_ci: Interval | None
    comparisons: list[VariantComparison]
    """Each pair of variants once: a later variant against an earlier one."""
    verdict: str
    """"winner", "no_difference", "too_small" or "no_goal"."""
    winner: str | None
    reading: str


@dataclass(frozen=True)
class WeekEntries:
    week: str
    treated: int
    holdout: int


@dataclass
class StepStats:
    """What happened at one step: customers who ran it, passed it in holdout, skipped it."""

    step_id: str
    timing: str = ""
    reached: int = 0
    holdout: int = 0
    skipped: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    """Messages emitted, by channel."""
    not_sent: dict[str, int] = field(default_factory=dict)
    """Messages held back, by "<reason>:<channel>" (no_consent, unreachable, capped)."""
    delayed: int = 0
    """Runs moved to the end of quiet hours or into a send window."""
    wait_met: int = 0
    wait_timeout: int = 0
    waits: bool = False
    """The step waits for an event (its counts are wait_met and wait_timeout)."""
    split: str = ""
    """A split step's variants and shares, "dessert 50% · ten_off 50%"; empty otherwise."""
    in_plan: bool = True


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    """A step id, or "end"."""
    count: int
    condition: str = ""
    """Why customers take this move, from the journey file: "if <expression>", "else",
    "event came", "timed out"; empty for the plain move to the next step."""


@dataclass(frozen=True)
class VoucherStats:
    offer: str
    issued: int
    redeemed: int
    unreached: int = 0
    """Of the issued, those whose step had no message that could reach the customer."""
    withheld: int = 0
    """Not issued: no message of the step could reach the customer (policy `withhold`)."""

    @property
    def redemption_rate(self) -> float | None:
        return self.redeemed / self.issued if self.issued else None


@dataclass
class JourneyReport:
    """Everything the counters say about one journey version."""

    key: str
    journey_id: str
    version: str
    name: str
    in_plan: bool
    """False when the version is known from its counters only."""
    has_goal: bool
    entered: int = 0
    """Treated entries; `entered_all` adds the holdout's."""
    entered_holdout: int = 0
    weeks: list[WeekEntries] = field(default_factory=list)
    steps: list[StepStats] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    vouchers: list[VoucherStats] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    endings: dict[str, int] = field(default_factory=dict)
    conversion: Conversion | None = None
    segments: list[SegmentConversion] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)
    """One per split step, in plan order."""
    details: dict[str, int] = field(default_factory=dict)
    """Counters the report does not know, by name, shown as they are."""

    @property
    def messages(self) -> int:
        return sum(sum(step.sent.values()) for step in self.steps)

    @property
    def entered_all(self) -> int:
        return self.entered + self.entered_holdout

    def not_sent(self, reason: str) -> int:
        """Messages held back for `reason` (no_consent, unreachable, capped), all steps."""
        return sum(count for step in self.steps for key, count in step.not_sent.items()
                   if key.partition(":")[0] == reason)


@dataclass(frozen=True)
class RunFacts:
    """What is known of the run the counters come from."""

    generated_at: str
    source: str
    events: int | None = None
    dead_letters: int | None = None
    commands: int | None = None
    customers: int | None = None
    period_start: str | None = None
    period_end: str | None = None
    seconds: float | None = None


@dataclass
class Report:
    facts: RunFacts
    journeys: list[JourneyReport]
    chain: dict[str, int] = field(default_factory=dict)
    """Counters that belong to no journey (e.g. vouchers|unknown_code)."""
