"""Short human labels for step timings and durations."""

from __future__ import annotations

from engine.reporting.intervals import Interval
from engine.reporting.model import Conversion, StepStats
from journeys_dsl.date_timing import date_label
from journeys_dsl.durations import format_duration
from journeys_dsl.plan import After, AtDate, AtTime, Immediate, StepPlan, WaitFor


def timing_label(step: StepPlan) -> str:
    """"day 7", "day 1 at 17:00", "after 2h", "wait for rating, 3d", "at once",
    "1d before event.booked_for at 10:00"."""
    timing = step.timing
    if isinstance(timing, AtDate):
        return date_label(timing)
    if isinstance(timing, Immediate):
        return "at entry" if step.index == 0 else "at once"
    if isinstance(timing, AtTime):
        days, rest = divmod(timing.offset_s, 86_400)
        label = (f"day {days}" if rest == 0
                 else f"after {format_duration(timing.offset_s)} from entry")
        if timing.local_time is not None:
            hour, minute = timing.local_time
            label += f" at {hour:02d}:{minute:02d}"
        return label
    if isinstance(timing, After):
        return f"after {format_duration(timing.delay_s)}"
    if isinstance(timing, WaitFor):
        return f"wait for {timing.event_type}, {format_duration(timing.timeout_s)}"
    return ""


MISSING = "\u2013"
"""Shown for a value that cannot be computed (an en dash)."""


def percent(value: float | None, digits: int = 1) -> str:
    """`12.5%`, or an en dash for an unknown value."""
    return MISSING if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None, digits: int = 1) -> str:
    """A difference of proportions in percentage points, signed: `+4.2 pp`."""
    return MISSING if value is None else f"{value * 100:+.{digits}f} pp"


NOT_SENT_REASONS = {
    "no_consent": "no consent",
    "unreachable": "no address",
    "capped": "over the cap",
}
"""Why a message was not sent, by counter name, in the words every report uses."""

_ENDINGS = {
    "completed": "completed",
    "step_limit": "stopped by the step limit",
    "version_missing": "version no longer loaded",
}
_COUNTERS = {
    "points_granted": "loyalty points granted",
    "goal": "goal reached (treated)",
    "goal_holdout": "goal reached (holdout)",
    "loyalty|points_expired": "loyalty points expired",
    "vouchers|unknown_code": "redemptions of unknown voucher codes",
}


def words(name: str) -> str:
    """A counter-style name in words: `came_back` -> `came back`."""
    return name.replace("_", " ")


def reason_label(reason: str) -> str:
    """`no_consent` -> `no consent`, `unreachable` -> `no address`."""
    return NOT_SENT_REASONS.get(reason, words(reason))


def ending_label(name: str) -> str:
    """`completed`, `exit:came_back` -> `left: came back`."""
    kind, _, reason = name.partition(":")
    if kind == "exit" and reason:
        return f"left: {words(reason)}"
    return _ENDINGS.get(name, words(name))


def counter_label(name: str) -> str:
    """A counter the report has no column for, in words: `loyalty|points_expired` ->
    `loyalty points expired`; others keep their parts: `a_b:c:d` -> `a b: c, d`."""
    if name in _COUNTERS:
        return _COUNTERS[name]
    kind, _, detail = name.partition(":")
    label = words(kind.replace("|", ": "))
    return f"{label}: {detail.replace(':', ', ')}" if detail else label


def step_counts(step: StepStats) -> list[tuple[str, int]]:
    """What happened at a step, as (words, count) pairs shared by every report: a wait
    step's customers either saw the event come or timed out."""
    if step.waits:
        return [("event came", step.wait_met), ("timed out", step.wait_timeout)]
    counts = [("reached", step.reached)]
    counts += [(name, n) for name, n in (("holdout", step.holdout), ("skipped", step.skipped),
                                         ("delayed for quiet hours", step.delayed)) if n]
    return counts


def joined(counts: list[tuple[str, int]]) -> str:
    """`reached 1,204 · holdout 96`."""
    return " · ".join(f"{name} {count:,}" for name, count in counts)


def ci_text(result: Conversion | None) -> str:
    """`-9.4 to +5.4 pp`, or an en dash."""
    if result is None or result.ci is None:
        return MISSING
    return f"{result.ci.low * 100:+.1f} to {result.ci.high * 100:+.1f} pp"


def refusals_by_channel(step: StepStats) -> dict[str, tuple[int, str]]:
    """Messages not sent, per channel: the total and `10 no consent, 3 no address`, the
    words both reports use."""
    grouped: dict[str, list[tuple[str, int]]] = {}
    for key, count in step.not_sent.items():
        reason, _, channel = key.partition(":")
        grouped.setdefault(channel, []).append((reason_label(reason), count))
    return {channel: (sum(n for _, n in reasons),
                      ", ".join(f"{n:,} {why}" for why, n in reasons))
            for channel, reasons in grouped.items()}


def not_sent_text(step: StepStats) -> str:
    """`email: 10 no consent, 3 no address; sms: 5 over the cap`."""
    return "; ".join(f"{channel}: {why}"
                     for channel, (_, why) in refusals_by_channel(step).items())


def interval_text(interval: Interval | None) -> str:
    """A rate's interval, `26.2 to 31.3%`, or an en dash."""
    if interval is None:
        return MISSING
    return f"{interval.low * 100:.1f} to {interval.high * 100:.1f}%"
