"""`journeys report` output: a plain-text table per journey, or the report model as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from engine.reporting.labels import percent, points
from engine.reporting.model import Conversion, JourneyReport, Report
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


def _ci(result: Conversion) -> str:
    if result.ci is None:
        return "-"
    return f"{result.ci.low * 100:+.1f} to {result.ci.high * 100:+.1f} pp"


def _conversion_row(label: str, result: Conversion) -> list[str]:
    return [label, f"{result.treated_goals}/{result.treated}", percent(result.treated_rate),
            f"{result.holdout_goals}/{result.holdout}", percent(result.holdout_rate),
            points(result.lift), _ci(result)]


def format_journey(journey: JourneyReport) -> str:
    """One journey's block: entries, steps, vouchers, endings, conversion and lift."""
    lines = [f"{journey.name} ({journey.key})"
             + ("" if journey.in_plan else "  [not in the journey files]"),
             f"  entered {journey.entered}, holdout {journey.entered_holdout}, "
             f"messages {journey.messages}"]
    if journey.steps:
        rows = [["step", "timing", "reached", "holdout", "skipped", "sent", "not sent"]]
        for step in journey.steps:
            rows.append([
                step.step_id, step.timing or "-", str(step.reached), str(step.holdout),
                str(step.skipped),
                ", ".join(f"{c} {n}" for c, n in step.sent.items()) or "-",
                ", ".join(f"{k} {n}" for k, n in step.not_sent.items()) or "-",
            ])
        lines += _table(rows, [False, False, True, True, True, False, False])
    if journey.vouchers or journey.rejected:
        vouchers = ", ".join(f"{v.offer} issued {v.issued} redeemed {v.redeemed}"
                             for v in journey.vouchers)
        rejected = ", ".join(f"{k} {n}" for k, n in journey.rejected.items())
        lines.append(f"  vouchers: {vouchers or '-'}" + (f"; refused: {rejected}"
                                                         if rejected else ""))
    if journey.endings:
        lines.append("  endings: " + ", ".join(f"{k} {n}" for k, n in journey.endings.items()))
    if journey.conversion is not None:
        rows = [["conversion", "treated", "rate", "holdout", "rate", "lift", "95% CI"],
                _conversion_row("all", journey.conversion)]
        rows += [_conversion_row(s.segment, s.conversion) for s in journey.segments]
        lines += _table(rows, [False, True, True, True, True, True, True])
        lines.append(f"  {reading(journey.conversion)}")
    for name, count in sorted(journey.details.items()):
        lines.append(f"  {name}: {count}")
    return "\n".join(lines)


def format_report(report: Report) -> str:
    """Every journey's block, then the chain-wide counters."""
    blocks = [format_journey(journey) for journey in report.journeys]
    if report.chain:
        blocks.append("chain-wide\n" + "\n".join(f"  {k}: {v}" for k, v in report.chain.items()))
    return "\n\n".join(blocks) + "\n"


def report_json(report: Report) -> str:
    """The report model as indented JSON (journeys' derived totals included)."""
    data = dataclasses.asdict(report)
    for journey, raw in zip(report.journeys, data["journeys"], strict=True):
        raw["messages"] = journey.messages
        for voucher, raw_voucher in zip(journey.vouchers, raw["vouchers"], strict=True):
            raw_voucher["redemption_rate"] = voucher.redemption_rate
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def format_summary(report: Report) -> str:
    """One line per journey: entries, messages per step, refusals, vouchers, conversion."""
    rows = [["journey", "entered", "holdout", "messages", "per step", "capped", "no consent",
             "vouchers", "redeemed", "conv.", "conv. holdout", "lift"]]
    for journey in report.journeys:
        per_step = " ".join(f"{step.step_id}={sum(step.sent.values())}"
                            for step in journey.steps if sum(step.sent.values()))
        refused = {"capped": 0, "no_consent": 0}
        for step in journey.steps:
            for name, count in step.not_sent.items():
                kind = name.split(":", 1)[0]
                if kind in refused:
                    refused[kind] += count
        result = journey.conversion
        rows.append([
            journey.key, str(journey.entered), str(journey.entered_holdout),
            str(journey.messages), per_step or "-", str(refused["capped"]),
            str(refused["no_consent"]), str(sum(v.issued for v in journey.vouchers)),
            str(sum(v.redeemed for v in journey.vouchers)),
            percent(result.treated_rate if result else None, 0),
            percent(result.holdout_rate if result else None, 0),
            points(result.lift if result else None),
        ])
    right = [False, True, True, True, False, True, True, True, True, True, True, True]
    return "\n".join(line.removeprefix("  ") for line in _table(rows, right))
