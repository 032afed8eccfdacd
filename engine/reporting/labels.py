"""Short human labels for step timings and durations."""

from __future__ import annotations

from journeys_dsl.plan import After, AtTime, Immediate, StepPlan, WaitFor

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def duration(seconds: int) -> str:
    """`3d`, `2h`, `1d12h`, `0s`."""
    if seconds <= 0:
        return "0s"
    parts = []
    rest = seconds
    for unit, size in _UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def timing_label(step: StepPlan) -> str:
    """"day 7", "day 1 at 17:00", "after 2h", "wait for rating, 3d", "at once"."""
    timing = step.timing
    if isinstance(timing, Immediate):
        return "at entry" if step.index == 0 else "at once"
    if isinstance(timing, AtTime):
        days, rest = divmod(timing.offset_s, 86_400)
        label = f"day {days}" if rest == 0 else f"after {duration(timing.offset_s)} from entry"
        if timing.local_time is not None:
            hour, minute = timing.local_time
            label += f" at {hour:02d}:{minute:02d}"
        return label
    if isinstance(timing, After):
        return f"after {duration(timing.delay_s)}"
    if isinstance(timing, WaitFor):
        return f"wait for {timing.event_type}, {duration(timing.timeout_s)}"
    return ""


MISSING = "\u2013"
"""Shown for a value that cannot be computed (an en dash)."""


def percent(value: float | None, digits: int = 1) -> str:
    """`12.5%`, or an en dash for an unknown value."""
    return MISSING if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None, digits: int = 1) -> str:
    """A difference of proportions in percentage points, signed: `+4.2 pp`."""
    return MISSING if value is None else f"{value * 100:+.{digits}f} pp"
