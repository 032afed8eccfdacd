"""Per-journey summaries from the engine's counters, as rows and as a terminal table."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from journeys_dsl.plan import JourneyPlan


@dataclass
class JourneySummary:
    key: str
    entered: int = 0
    entered_holdout: int = 0
    messages: int = 0
    vouchers_issued: int = 0
    vouchers_redeemed: int = 0
    goals: int = 0
    goals_holdout: int = 0
    capped: int = 0
    no_consent: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    sent_by_step: Counter[str] = field(default_factory=Counter)

    @property
    def conversion(self) -> float | None:
        return self.goals / self.entered if self.entered else None

    @property
    def conversion_holdout(self) -> float | None:
        return self.goals_holdout / self.entered_holdout if self.entered_holdout else None


def summarise(stats: Counter[str]) -> dict[str, JourneySummary]:
    """Group `journey@version|counter` counters by journey version."""
    out: dict[str, JourneySummary] = defaultdict(lambda: JourneySummary(""))
    for name, count in stats.items():
        key, _, counter = name.partition("|")
        if "@" not in key:
            continue
        summary = out[key]
        summary.key = key
        kind, _, detail = counter.partition(":")
        if counter == "entered":
            summary.entered += count
        elif counter == "entered_holdout":
            summary.entered_holdout += count
        elif kind == "sent":
            summary.messages += count
            summary.sent_by_step[detail.rsplit(":", 1)[0]] += count
        elif kind == "capped":
            summary.capped += count
        elif kind == "no_consent":
            summary.no_consent += count
        elif kind == "voucher_issued":
            summary.vouchers_issued += count
        elif kind == "voucher_redeemed":
            summary.vouchers_redeemed += count
        elif counter == "goal":
            summary.goals += count
        elif counter == "goal_holdout":
            summary.goals_holdout += count
        elif kind in ("exit", "completed", "version_missing", "step_limit"):
            summary.ended[counter] += count
    return dict(out)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def format_table(stats: Counter[str], plans: Sequence[JourneyPlan]) -> str:
    """A table of every journey: entries, holdout, messages per step, vouchers, conversion."""
    summaries = summarise(stats)
    header = ("journey", "entered", "holdout", "messages", "per step", "capped", "no consent",
              "vouchers", "redeemed", "conv.", "conv. holdout")
    rows = [header]
    for plan in sorted(plans, key=lambda p: p.journey_id):
        summary = summaries.get(plan.key, JourneySummary(plan.key))
        per_step = " ".join(f"{step.step_id}={summary.sent_by_step[step.step_id]}"
                            for step in plan.steps if summary.sent_by_step[step.step_id])
        rows.append((
            plan.key, str(summary.entered), str(summary.entered_holdout), str(summary.messages),
            per_step or "-", str(summary.capped), str(summary.no_consent),
            str(summary.vouchers_issued), str(summary.vouchers_redeemed),
            _percent(summary.conversion) if plan.goal else "-",
            _percent(summary.conversion_holdout) if plan.goal else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
