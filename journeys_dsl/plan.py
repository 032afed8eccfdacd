"""The compiled, frozen form of a journey: what the engine runs.

The engine never sees YAML or raw dicts; it sees these immutable dataclasses, with
step references resolved to indices and conditions compiled to `Expression` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

END = -1
"""Step index meaning "the enrollment is complete"."""

DAYPARTS: Mapping[str, tuple[int, int]] = {
    # name -> [start hour, end hour) in the customer's (or venue's) local time
    "breakfast": (6, 11),
    "lunch": (11, 15),
    "afternoon": (15, 18),
    "dinner": (18, 23),
    "late": (23, 30),  # 23:00 to 06:00 the next day
}
DATE_ENTRY_KINDS: tuple[str, ...] = ("birthday", "first_visit_anniversary")


class Expression(Protocol):
    """A compiled expression of the journey language (see `journeys_dsl.expressions`)."""

    source: str

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The value of the expression; missing paths read as None."""
        ...

    def test(self, scope: Mapping[str, Any]) -> bool:
        """The truth of the expression; a type mismatch reads as false, never raises."""
        ...


@dataclass(frozen=True)
class EventEntry:
    """Enter when an event of `event_type` arrives and `condition` holds."""

    event_type: str
    condition: Expression | None


@dataclass(frozen=True)
class InactivityEntry:
    """Enter `after_s` seconds after a visit with no visit since.

    `condition` is checked at the visit that starts the countdown ("4 visits in the
    past 90 days, then 45 days without one").
    """

    after_s: int
    condition: Expression | None


@dataclass(frozen=True)
class DateEntry:
    """Enter every year on a date of the profile, at a local time, shifted by `offset_s`."""

    kind: Literal["birthday", "first_visit_anniversary"]
    offset_s: int
    local_time: tuple[int, int]
    condition: Expression | None


@dataclass(frozen=True)
class PAliveEntry:
    """Enter when the probability that the customer is still active falls below `threshold`.

    `condition` is checked at the visit that arms the entry.
    """

    threshold: float
    condition: Expression | None


@dataclass(frozen=True)
class SegmentEntry:
    """Enter when the customer enters (`enters` true) or leaves a segment of the segments
    file; `condition` is checked at that moment, on the profile (see
    `engine.core.triggers`)."""

    segment: str
    enters: bool
    condition: Expression | None


@dataclass(frozen=True)
class DateRef:
    """A date a journey times by: a field of the entry event (`event.booked_for`) or of
    the profile (`customer.birthday`); see `journeys_dsl.dates`."""

    root: Literal["event", "customer"]
    name: str

    @property
    def source(self) -> str:
        return f"{self.root}.{self.name}"


@dataclass(frozen=True)
class AtDate:
    """Run at `date` shifted by `offset_s` (days on the local calendar, the rest exactly);
    with `local_time`, at that hour:minute of the local day it falls on."""

    date: DateRef
    offset_s: int
    local_time: tuple[int, int] | None


@dataclass(frozen=True)
class DateFieldEntry:
    """Enter at a date of the profile shifted by `offset_s`: every year on its month and
    day (`yearly`), or once."""

    date: DateRef
    yearly: bool
    offset_s: int
    local_time: tuple[int, int] | None
    condition: Expression | None


@dataclass(frozen=True)
class EventDateEntry:
    """Enter at a time computed from a date of an `event_type` event (`at`), armed by the
    event when `condition` holds; a later such event moves it."""

    event_type: str
    condition: Expression | None
    at: AtDate


@dataclass(frozen=True)
class BroadcastEntry:
    """Enter everyone who matches `condition` (the audience) at a local date and time in
    each customer's zone, once or every week or month until `until_local_ms`.

    Local times are kept as epoch ms of the wall-clock time read as UTC ("naive"); see
    `journeys_dsl.broadcasts` for the occurrences and `engine.flow.broadcasts` for how
    each shard reaches its customers."""

    start_local_ms: int
    every: Literal["once", "week", "month"]
    until_local_ms: int | None
    rate_per_minute: float | None
    """Entries a shard lets in per minute (None: no limit)."""
    condition: Expression | None


Entry = (EventEntry | InactivityEntry | DateEntry | PAliveEntry | SegmentEntry
         | DateFieldEntry | EventDateEntry | BroadcastEntry)


@dataclass(frozen=True)
class ReEntry:
    """May a customer who left the journey enter it again, and when."""

    mode: Literal["never", "always", "after"]
    after_s: int = 0


@dataclass(frozen=True)
class ExitRule:
    """End the enrollment at once when a matching event arrives (also during a wait)."""

    event_type: str
    condition: Expression | None
    reason: str


@dataclass(frozen=True)
class ConditionExit:
    """End the enrollment when `condition` becomes true, whatever made it so: an event, a
    step's timer, or the passage of time (see `engine.core.triggers`)."""

    condition: Expression
    reason: str


@dataclass(frozen=True)
class Goal:
    """The conversion the journey is measured by, reached within `within_s` of entry."""

    event_type: str
    condition: Expression | None
    within_s: int


@dataclass(frozen=True)
class OfferPlan:
    """A voucher a journey can issue."""

    offer_id: str
    description: str
    item: str | None
    category: str | None
    discount: str | None
    dayparts: tuple[str, ...]
    valid_for_s: int


@dataclass(frozen=True)
class SendAction:
    channel: str
    template: str
    variables: tuple[tuple[str, Expression], ...]


@dataclass(frozen=True)
class IssueAction:
    offer_id: str


@dataclass(frozen=True)
class PointsAction:
    points: int
    reason: str


@dataclass(frozen=True)
class TagAction:
    tag: str
    remove: bool


Action = SendAction | IssueAction | PointsAction | TagAction


@dataclass(frozen=True)
class Immediate:
    """Run as soon as the enrollment arrives at the step."""


@dataclass(frozen=True)
class AtTime:
    """Run `offset_s` after entry; with `local_time`, at that hour:minute of the local day."""

    offset_s: int
    local_time: tuple[int, int] | None


@dataclass(frozen=True)
class After:
    """Run `delay_s` after arriving at the step."""

    delay_s: int


@dataclass(frozen=True)
class WaitFor:
    """Wait for an event; on it go to the step's `next_index`, after `timeout_s` to `on_timeout`."""

    event_type: str
    condition: Expression | None
    timeout_s: int
    on_timeout: int


Timing = Immediate | AtTime | After | WaitFor | AtDate


@dataclass(frozen=True)
class Branch:
    """Go to `target` when `condition` holds; a None condition is the `else` arm."""

    condition: Expression | None
    target: int


@dataclass(frozen=True)
class Variant:
    """One arm of a split: `share` of the enrollments (0 to 1) go to `target`."""

    name: str
    share: float
    target: int


@dataclass(frozen=True)
class StepPlan:
    step_id: str
    index: int
    timing: Timing
    guard: Expression | None
    actions: tuple[Action, ...]
    branches: tuple[Branch, ...]
    next_index: int
    split: tuple[Variant, ...] = ()
    """An experiment: each enrollment goes to one variant's target, drawn by customer,
    journey and step (see `engine.core.experiments`); empty for other steps."""


@dataclass(frozen=True)
class JourneyPlan:
    journey_id: str
    version: int
    name: str
    description: str
    source_file: str
    source_text: str
    source_digest: str
    entry: Entry
    re_entry: ReEntry
    holdout: float
    goal: Goal | None
    exits: tuple[ExitRule, ...]
    offers: Mapping[str, OfferPlan]
    steps: tuple[StepPlan, ...]
    step_index: Mapping[str, int]
    condition_exits: tuple[ConditionExit, ...] = ()

    @cached_property
    def key(self) -> str:
        """`journey_id@version`, the name of this version in state and statistics."""
        return f"{self.journey_id}@{self.version}"

    @cached_property
    def event_dates(self) -> tuple[str, ...]:
        """The fields of the entry event that steps are timed by (`at: {date: event.x}`),
        remembered on the enrollment at entry in this order."""
        return tuple(sorted({s.timing.date.name for s in self.steps
                             if isinstance(s.timing, AtDate) and s.timing.date.root == "event"}))

    @cached_property
    def variant_steps(self) -> Mapping[str, str]:
        """The split step of each variant name (names are unique in a journey)."""
        return {variant.name: step.step_id for step in self.steps for variant in step.split}

    @cached_property
    def reacts_to(self) -> frozenset[str]:
        """The event types an enrollment in this plan reacts to: its exits and waits."""
        return frozenset([rule.event_type for rule in self.exits]
                         + [s.timing.event_type for s in self.steps
                            if isinstance(s.timing, WaitFor)])
