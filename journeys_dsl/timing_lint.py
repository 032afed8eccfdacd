"""Likely timing mistakes in a valid journey, reported as warnings, never as errors.

- A step timed `day 3` right after a step at `day 10`: steps run in order, so it runs at
  day 10 at the earliest, which is rarely what was meant.
- A step timed 1 day before a date right after a step 3 hours after it: the customer
  reaches it when its time has passed, so it is always skipped (`journeys_dsl.date_lint`).
- A goal whose window closes before the first message can go out: every conversion it
  counts happens before any message, so the journey's lift says nothing about them.
"""

from __future__ import annotations

from journeys_dsl import plan
from journeys_dsl.date_lint import dates_out_of_order
from journeys_dsl.durations import format_duration
from journeys_dsl.errors import Problem
from journeys_dsl.model import END_NAME, JourneySpec, StepSpec, WaitForSpec

__all__ = ["timing_warnings"]

DAY_S = 86_400


def timing_warnings(spec: JourneySpec, filename: str,
                    positions: dict[str, tuple[int, int]]) -> list[Problem]:
    """Warnings about step order and the goal window; `positions` maps value paths
    (`steps[2].at`, `goal.within`) to where they are written."""
    return [*_out_of_order(spec, filename, positions),
            *dates_out_of_order(spec, filename, positions),
            *_goal_before_first_message(spec, filename, positions)]


def _day_label(offset_s: int) -> str:
    days, rest = divmod(offset_s, DAY_S)
    return f"day {days}" if rest == 0 else f"{format_duration(offset_s)} after entry"


def _follows(previous: StepSpec, step: StepSpec) -> bool:
    """Whether `step` is where `previous` goes when no branch is taken."""
    if previous.split:
        return any(variant.target.name == step.step_id for variant in previous.split)
    if previous.next is not None:
        return previous.next.name == step.step_id
    return not previous.has_else


def _out_of_order(spec: JourneySpec, filename: str,
                  positions: dict[str, tuple[int, int]]) -> list[Problem]:
    found: list[Problem] = []
    for previous, step in zip(spec.steps, spec.steps[1:], strict=False):
        before, timing = previous.timing, step.timing
        if not (isinstance(before, plan.AtTime) and isinstance(timing, plan.AtTime)):
            continue
        if timing.offset_s >= before.offset_s or not _follows(previous, step):
            continue
        line, col = positions.get(f"{step.path}.at", (step.line, step.col))
        found.append(Problem(
            filename, line, col,
            f"{_day_label(timing.offset_s)} comes after step '{previous.step_id}' at "
            f"{_day_label(before.offset_s)}: steps run in order, so '{step.step_id}' runs at "
            f"{_day_label(before.offset_s)} at the earliest; move it before "
            f"'{previous.step_id}' or give it a later day", f"{step.path}.at", warning=True))
    return found


def _first_message_s(spec: JourneySpec) -> int | None:
    """The earliest time after entry at which a message can go out, following the steps
    in order (a wait may end at once, a guard may pass); None if none sends."""
    index = {step.step_id: position for position, step in enumerate(spec.steps)}
    return _first_message_from(spec, index, 0, 0, set())


def _first_message_from(spec: JourneySpec, index: dict[str, int], position: int, at: int,
                        seen: set[int]) -> int | None:
    """`_first_message_s` from the step at `position`, reached `at` seconds after entry; a
    split follows each of its variants and keeps the earliest."""
    while 0 <= position < len(spec.steps) and position not in seen:
        seen.add(position)
        step = spec.steps[position]
        timing = step.timing
        if isinstance(timing, plan.AtTime):
            at = max(at, timing.offset_s)
        elif isinstance(timing, plan.After):
            at += timing.delay_s
        elif isinstance(timing, WaitForSpec):
            pass  # the awaited event may come at once
        if any(isinstance(action, plan.SendAction) for action in step.actions):
            return at
        if step.split:
            found = [_first_message_from(spec, index, index.get(v.target.name, -1), at,
                                         set(seen)) for v in step.split]
            return min((f for f in found if f is not None), default=None)
        if step.next is not None:
            if step.next.name == END_NAME:
                return None
            position = index.get(step.next.name, -1)
        else:
            position += 1
    return None


def _goal_before_first_message(spec: JourneySpec, filename: str,
                               positions: dict[str, tuple[int, int]]) -> list[Problem]:
    goal = spec.goal
    if goal is None or not goal.within_s:
        return []
    first = _first_message_s(spec)
    if first is None or goal.within_s >= first:
        return []
    line, col = positions.get("goal.within", (spec.id_line, spec.id_col))
    return [Problem(
        filename, line, col,
        f"the goal's window ({format_duration(goal.within_s)}) closes before the first "
        f"message can go out ({_day_label(first)}): every conversion it counts comes before "
        f"any message; make it longer than {format_duration(first)}", "goal.within",
        warning=True)]
