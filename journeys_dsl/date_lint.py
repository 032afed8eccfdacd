"""Date steps in an order that skips one: a step timed before the date step it follows.

    - at: {date: event.booked_for, after: 3h}
    - at: {date: event.booked_for, before: 1d}     # reached after its time: always skipped

Steps timed by a date are compared only with the step they follow, when both read the
same date and their times can be ordered whatever the date's own time of day: both shifts
exact (no `time`), or both whole days with a `time`.
"""

from __future__ import annotations

from journeys_dsl import plan
from journeys_dsl.date_timing import date_label
from journeys_dsl.errors import Problem
from journeys_dsl.model import JourneySpec, StepSpec

__all__ = ["dates_out_of_order"]

DAY_S = 86_400


def _order(timing: plan.AtDate) -> tuple[int, int] | None:
    """A key that orders the step's time among those on the same date; None when it cannot
    be ordered without knowing the date's time of day."""
    if timing.local_time is None:
        return 0, timing.offset_s
    if timing.offset_s % DAY_S:
        return None
    hour, minute = timing.local_time
    return 1, timing.offset_s + hour * 3600 + minute * 60


def _follows(previous: StepSpec, step: StepSpec) -> bool:
    if previous.next is not None:
        return previous.next.name == step.step_id
    return not previous.has_else


def dates_out_of_order(spec: JourneySpec, filename: str,
                       positions: dict[str, tuple[int, int]]) -> list[Problem]:
    """Warnings for a date step timed before the date step it follows."""
    found: list[Problem] = []
    for previous, step in zip(spec.steps, spec.steps[1:], strict=False):
        before, timing = previous.timing, step.timing
        if not (isinstance(before, plan.AtDate) and isinstance(timing, plan.AtDate)):
            continue
        if before.date != timing.date or not _follows(previous, step):
            continue
        first, second = _order(before), _order(timing)
        if first is None or second is None or first[0] != second[0] or second >= first:
            continue
        line, col = positions.get(f"{step.path}.at", (step.line, step.col))
        found.append(Problem(
            filename, line, col,
            f"{date_label(timing)} comes before step '{previous.step_id}' ({date_label(before)}): "
            f"steps run in order, so '{step.step_id}' is reached after its time and always "
            f"skipped; move it before '{previous.step_id}'", f"{step.path}.at", warning=True))
    return found
