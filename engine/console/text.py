"""Explanations and values as plain text: for `journeys explain` and the console's pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.console.conditions import ConditionCheck
from engine.console.explain import JourneyExplanation
from engine.core.timeutil import local_datetime
from engine.reporting.labels import MISSING

VERDICTS = {
    "in_journey": "in the journey",
    "would_enter": "would enter",
    "holdout": "would enter (holdout)",
    "would_not_enter": "would not enter",
}
EPOCH_MS_FROM = 10**11
"""Numbers this large under a name ending in `_at` are shown as times (epoch ms)."""


def when(ts: int | None, timezone: str | None = None) -> str:
    """A time as `2025-03-10 09:00` in `timezone` (UTC when None)."""
    if ts is None:
        return MISSING
    if timezone:
        return f"{local_datetime(ts, timezone):%Y-%m-%d %H:%M}"
    return f"{datetime.fromtimestamp(ts / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def show_value(name: str, value: Any, timezone: str | None = None) -> str:
    """A value read by a condition, as a person reads it."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and name.endswith("_at") and value > EPOCH_MS_FROM:
        return when(value, timezone)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show_value("", v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show_value(str(k), v, timezone)}"
                               for k, v in value.items()) + "}"
    return str(value)


def format_explanations(customer_id: str, timezone: str | None,
                        explanations: list[JourneyExplanation]) -> str:
    """The explanations of one customer as text for the terminal."""
    out: list[str] = []
    for explanation in explanations:
        out.append(f"{explanation.journey_name} ({explanation.journey_key}): "
                   f"{VERDICTS[explanation.verdict]}")
        out.append(f"  {explanation.summary}")
        out.append(f"  as of {when(explanation.now, timezone)} "
                   f"({timezone or 'UTC'}), customer {customer_id}")
        enrollment = explanation.enrollment
        if enrollment is not None:
            state = (f"ended {when(enrollment.ended_at, timezone)}: {enrollment.end_reason}"
                     if enrollment.ended_at is not None
                     else f"at step {enrollment.step}, next due "
                          f"{when(enrollment.due_at, timezone)}")
            out.append(f"  enrollment #{enrollment.seq} (version {enrollment.version}): "
                       f"entered {when(enrollment.entered_at, timezone)}"
                       f"{', holdout' if enrollment.holdout else ''}; {state}"
                       f"{'; goal reached' if enrollment.goal_reached else ''}"
                       f"{f'; variant {enrollment.variant}' if enrollment.variant else ''}")
        for check in explanation.checks:
            mark = "ok " if check.passed else "NO "
            out.append(f"  {mark} {check.name}: {check.detail}")
            if check.condition is not None:
                out.extend(_condition_lines(check.condition, timezone, "        "))
        for step in explanation.steps:
            notes = f"; drew variant {step.variant}" if step.variant else ""
            notes += f"; {step.delayed}" if step.delayed else ""
            out.append(f"  step {step.step_id} ({step.timing}) at {when(step.at, timezone)}: "
                       f"{step.result}{notes}; next {step.next_step or MISSING}")
            if step.guard is not None:
                out.append("      if:")
                out.extend(_condition_lines(step.guard, timezone, "        "))
            for message in step.messages:
                out.append(f"      {message.channel}: {message.result.replace('_', ' ')} "
                           f"({message.detail})")
        if explanation.ending:
            out.append(f"  ends: {explanation.ending}")
        out.extend(f"  note: {note}" for note in explanation.assumptions)
        out.append("")
    return "\n".join(out)


def _condition_lines(check: ConditionCheck, timezone: str | None, indent: str) -> list[str]:
    lines = [f"{indent}{'true ' if check.passed else 'false'}  {check.source}"]
    for part in check.parts:
        lines.append(f"{indent}  {'true ' if part.passed else 'false'}  {part.source}")
        lines.extend(f"{indent}      {value.name} = {show_value(value.name, value.value, timezone)}"
                     for value in part.values)
    if not check.parts:
        lines.extend(f"{indent}    {value.name} = {show_value(value.name, value.value, timezone)}"
                     for value in check.values)
    return lines
