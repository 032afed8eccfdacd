"""`journeys report` output: a plain-text table per journey, or the report model as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from engine.reporting.labels import (
    ci_text,
    counter_label,
    ending_label,
    interval_text,
    joined,
    not_sent_text,
    percent,
    points,
    step_counts,
    words,
)
from engine.reporting.model import (
    Conversion,
    Experiment,
    JourneyReport,
    Report,
    VoucherStats,
)
from engine.reporting.stats import reading


def _table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if right[i] else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def _conversion_row(label: str, result: Conversion) -> list[str]:
    return [label, f"{result.treated_goals:,}/{result.treated:,}", percent(result.treated_rate),
            f"{result.holdout_goals:,}/{result.holdout:,}", percent(result.holdout_rate),
            points(result.lift), ci_text(result)]


def format_journey(journey: JourneyReport) -> str:
    """One journey's block: entries, steps, vouchers, endings, conversion and lift."""
    lines = [f"{journey.name} ({journey.key})"
             + ("" if journey.in_plan else "  [not in the journey files]"),
             f"  entered {journey.entered_all:,}: treated {journey.entered:,}, "
             f"holdout {journey.entered_holdout:,}; messages {journey.messages:,}"]
    if journey.steps:
        rows = [["step", "timing", "customers", "sent", "not sent"]]
        for step in journey.steps:
            rows.append([
                step.step_id, step.timing or "-", joined(step_counts(step)),
                ", ".join(f"{c} {n:,}" for c, n in step.sent.items()) or "-",
                not_sent_text(step) or "-",
            ])
        lines += _table(rows, [False] * 5)
    for edge in journey.edges:
        if edge.condition:
            lines.append(f"  {edge.source} -> {edge.target} ({edge.condition}): {edge.count:,}")
    if journey.vouchers or journey.rejected:
        lines.append("  vouchers: " + ("; ".join(_voucher(v) for v in journey.vouchers) or "-"))
        if journey.rejected:
            lines.append("  redemption refused because: " + ", ".join(
                f"{words(k)} {n:,}" for k, n in journey.rejected.items()))
    if journey.endings:
        lines.append("  endings: " + ", ".join(f"{ending_label(k)} {n:,}"
                                               for k, n in journey.endings.items()))
    if journey.conversion is not None:
        rows = [["conversion", "treated", "rate", "holdout", "rate", "lift", "95% CI"],
                _conversion_row("all", journey.conversion)]
        rows += [_conversion_row(s.segment, s.conversion) for s in journey.segments]
        lines += _table(rows, [False, True, True, True, True, True, True])
        lines.append(f"  {reading(journey.conversion)}")
    for experiment in journey.experiments:
        lines += format_experiment(experiment)
    for name, count in sorted(journey.details.items()):
        lines.append(f"  {counter_label(name)}: {count:,}")
    return "\n".join(lines)


def format_experiment(experiment: Experiment) -> list[str]:
    """A split's variants and the holdout: customers, messages, conversion with its 95% CI,
    lift against the holdout; then the variants against each other and the reading."""
    lines = [f"  experiment at step {experiment.step_id}: {experiment.reading}"]
    rows = [["variant", "share", "goes to", "customers", "messages", "converted", "rate",
             "95% CI", "vs holdout", "95% CI of lift"]]
    for v in experiment.variants:
        versus = v.vs_holdout.result if v.vs_holdout is not None else None
        rows.append([v.variant, percent(v.share, 0), v.target or "-", f"{v.entered:,}",
                     f"{v.messages:,}", f"{v.goals:,}", percent(v.rate), interval_text(v.ci),
                     points(versus.lift if versus else None), ci_text(versus)])
    rows.append(["holdout", "-", "-", f"{experiment.holdout:,}", "0",
                 f"{experiment.holdout_goals:,}", percent(experiment.holdout_rate),
                 interval_text(experiment.holdout_ci), "", ""])
    lines += _table(rows, [False, True, False, True, True, True, True, True, True, True])
    for comparison in experiment.comparisons:
        result = comparison.result
        lines.append(f"  {comparison.variant} vs {comparison.other}: {points(result.lift)} "
                     f"(95% CI {ci_text(result)})")
    return lines


def _voucher(voucher: VoucherStats) -> str:
    text = f"{voucher.offer} issued {voucher.issued:,}"
    if voucher.unreached:
        text += f" ({voucher.unreached:,} to customers no message reached)"
    if voucher.withheld:
        text += f", withheld {voucher.withheld:,} (no message could reach)"
    return text + f", redeemed {voucher.redeemed:,}"


def format_report(report: Report) -> str:
    """Every journey's block, then the chain-wide counters."""
    blocks = [format_journey(journey) for journey in report.journeys]
    if report.chain:
        blocks.append("chain-wide\n" + "\n".join(f"  {counter_label(k)}: {v:,}"
                                                  for k, v in report.chain.items()))
    return "\n\n".join(blocks) + "\n"


def format_experiments(report: Report) -> str:
    """The experiments of every journey that has one, under the journey's name; empty when
    no journey splits (what `journeys backtest` prints besides the HTML)."""
    blocks = ["\n".join([f"{journey.name} ({journey.key})",
                         *[line for experiment in journey.experiments
                           for line in format_experiment(experiment)]])
              for journey in report.journeys if journey.experiments]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def report_json(report: Report) -> str:
    """The report model as indented JSON (journeys' derived totals included)."""
    data = dataclasses.asdict(report)
    for journey, raw in zip(report.journeys, data["journeys"], strict=True):
        raw["messages"] = journey.messages
        raw["entered_all"] = journey.entered_all
        for voucher, raw_voucher in zip(journey.vouchers, raw["vouchers"], strict=True):
            raw_voucher["redemption_rate"] = voucher.redemption_rate
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


SUMMARY_HEADER = ("journey", "entered", "treated", "holdout", "messages", "no consent",
                  "no address", "capped", "vouchers", "redeemed", "conv. treated",
                  "conv. holdout", "lift", "95% CI of lift")


def format_summary(report: Report) -> str:
    """One line per journey: entries, messages, refusals, vouchers, conversion, lift."""
    rows = [list(SUMMARY_HEADER)]
    for journey in report.journeys:
        result = journey.conversion
        rows.append([
            journey.key, f"{journey.entered_all:,}", f"{journey.entered:,}",
            f"{journey.entered_holdout:,}", f"{journey.messages:,}",
            f"{journey.not_sent('no_consent'):,}", f"{journey.not_sent('unreachable'):,}",
            f"{journey.not_sent('capped'):,}", f"{sum(v.issued for v in journey.vouchers):,}",
            f"{sum(v.redeemed for v in journey.vouchers):,}",
            percent(result.treated_rate if result else None, 0),
            percent(result.holdout_rate if result else None, 0),
            points(result.lift if result else None), ci_text(result),
        ])
    right = [False] + [True] * (len(SUMMARY_HEADER) - 1)
    return "\n".join(line.removeprefix("  ") for line in _table(rows, right))
