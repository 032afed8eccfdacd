"""The self-contained HTML report: one file, inline CSS and SVG, no script, no network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine.reporting.flow import flow_diagram
from engine.reporting.labels import (
    MISSING,
    NOT_SENT_REASONS,
    ci_text,
    counter_label,
    ending_label,
    interval_text,
    percent,
    points,
    reason_label,
    words,
)
from engine.reporting.model import Conversion, Experiment, JourneyReport, Report
from engine.reporting.stats import reading
from engine.reporting.svg import esc, message_bars, week_bars

CSS = """
:root { --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; --paper: #ffffff;
        --tint: #f8fafc; --accent: #2563eb; --good: #15803d; --bad: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--tint); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 2px; }
h3 { font-size: 15px; margin: 22px 0 8px; color: #334155; }
.subtitle { color: var(--muted); margin: 0 0 18px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 22px; padding: 0; }
.facts div { background: var(--paper); border: 1px solid var(--line); border-radius: 8px;
             padding: 8px 14px; min-width: 110px; }
.facts dt { color: var(--muted); font-size: 12px; }
.facts dd { margin: 0; font-weight: 600; font-size: 16px; }
section.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
               padding: 20px 22px; margin: 0 0 22px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 12px; background: var(--tint);
     white-space: normal; vertical-align: bottom; }
th:first-child, td:first-child, td.text { text-align: left; }
td.text { white-space: normal; }
.grid2 { display: grid; grid-template-columns: minmax(0, 460px) minmax(0, 1fr); gap: 30px;
         align-items: start; }
.scroll { overflow-x: auto; }
table.summary { font-size: 13px; }
table.summary td:first-child { white-space: normal; min-width: 170px; }
table.summary .muted { display: block; font-size: 12px; }
table.summary th { min-width: 80px; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
           sans-serif; font-size: 12px; fill: var(--ink); }
svg .name { font-weight: 700; font-size: 13px; }
svg .timing { fill: var(--accent); font-size: 12px; }
svg .counts { fill: #334155; }
svg .sent, svg .axis, svg .caption, svg .value { fill: var(--muted); }
svg .legend { fill: #334155; }
svg .empty { fill: var(--muted); font-size: 14px; }
svg .node rect { fill: var(--paper); stroke: #94a3b8; stroke-width: 1.2; }
svg .entry rect { fill: #eff6ff; stroke: var(--accent); }
svg .end rect { fill: #f0fdf4; stroke: #16a34a; }
svg .exit rect { fill: #fff7ed; stroke: #ea580c; stroke-dasharray: 4 3; }
svg .ongoing rect { fill: #f1f5f9; stroke: #94a3b8; stroke-dasharray: 2 3; }
svg .unplanned rect { stroke-dasharray: 5 3; }
svg .edge { fill: none; stroke: #94a3b8; stroke-linecap: round; }
svg .arrow-head { fill: #64748b; }
svg .edge-label { fill: var(--paper); stroke: var(--line); }
svg .edge-count { font-size: 11px; font-weight: 600; fill: #334155; }
svg .grid { stroke: var(--line); }
.verdict { display: inline-block; padding: 2px 8px; border-radius: 999px; font-size: 12px;
           font-weight: 600; background: #f1f5f9; color: #334155; }
.verdict.lift { background: #dcfce7; color: var(--good); }
.verdict.negative { background: #fee2e2; color: var(--bad); }
.reading { margin: 8px 0 0; color: #334155; }
.muted { color: var(--muted); }
.key { color: var(--muted); font-size: 13px; margin: 0 0 12px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
@media (max-width: 820px) {
  main { padding: 16px 10px 40px; }
  section.card { padding: 14px 12px; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; }
  table.stack thead { display: none; }
  table.stack tr { border-bottom: 1px solid var(--line); padding: 6px 0; }
  table.stack td { border: 0; padding: 2px 4px; text-align: right; white-space: normal; }
  table.stack td::before { content: attr(data-label); float: left; color: var(--muted);
                           font-size: 12px; padding-right: 12px; text-align: left; }
  table.stack td:first-child { text-align: left; font-weight: 600; }
  table.stack td:first-child::before { content: none; }
  table.stack td[data-label]:first-child::before { content: attr(data-label) ": ";
                                                   float: none; font-weight: 400; }
  table.summary td:first-child { min-width: 0; }
}
"""

VERDICTS = {
    "lift": "significant lift", "negative": "significantly worse",
    "no_significant_lift": "no significant lift", "no_holdout": "no holdout",
    "no_entries": "no entries",
}


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; cells are raw HTML (escape them before). On a narrow screen each row stacks
    into a card whose cells carry their column's name (`data-label`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    labels = [f' data-label="{esc(h)}"' if h else "" for h in header]
    body = "".join("<tr>" + "".join(f"<td{label}>{cell}</td>"
                                    for label, cell in zip(labels, row, strict=True))
                   + "</tr>" for row in rows)
    return (f'<table class="{esc((cls + " stack").strip())}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _verdict(result: Conversion | None) -> str:
    if result is None:
        return '<span class="muted">no goal</span>'
    return f'<span class="verdict {esc(result.verdict)}">{esc(VERDICTS[result.verdict])}</span>'


def _conversion_cells(result: Conversion) -> list[str]:
    return [
        f"{result.treated:,}", f"{result.treated_goals:,}", esc(percent(result.treated_rate)),
        f"{result.holdout:,}", f"{result.holdout_goals:,}", esc(percent(result.holdout_rate)),
        esc(points(result.lift)), esc(percent(result.relative_lift, 0)), esc(ci_text(result)),
        _verdict(result),
    ]


CONVERSION_HEADER = ("", "treated", "converted", "rate", "holdout", "converted", "rate",
                     "lift", "relative", "95% CI of lift", "reading")


def _facts(report: Report) -> str:
    facts = report.facts
    items = [("events", f"{facts.events:,}" if facts.events is not None else None),
             ("period", f"{facts.period_start} → {facts.period_end}"
              if facts.period_start and facts.period_end else None),
             ("customers", f"{facts.customers:,}" if facts.customers is not None else None),
             ("messages", f"{facts.commands:,}" if facts.commands is not None else None),
             ("dead letters", f"{facts.dead_letters:,}" if facts.dead_letters is not None
              else None),
             ("journeys", str(len(report.journeys))),
             ("generated at", facts.generated_at)]
    return '<dl class="facts">' + "".join(
        f"<div><dt>{esc(name)}</dt><dd>{esc(value)}</dd></div>"
        for name, value in items if value is not None) + "</dl>"


def _summary(report: Report) -> str:
    rows = []
    for journey in report.journeys:
        result = journey.conversion
        issued = sum(v.issued for v in journey.vouchers)
        redeemed = sum(v.redeemed for v in journey.vouchers)
        refused = [(reason_label(r), journey.not_sent(r)) for r in NOT_SENT_REASONS]
        rows.append([
            f'<a href="#{esc(journey.key)}">{esc(journey.name)}</a> '
            f'<span class="muted">{esc(journey.key)}</span>',
            f"{journey.entered_all:,}"
            f'<span class="muted">{journey.entered:,} treated<br>'
            f"{journey.entered_holdout:,} holdout</span>",
            f"{journey.messages:,}",
            "<br>".join(esc(f"{n:,} {why}") for why, n in refused if n) or "0",
            f"{issued:,} / {redeemed:,}",
            (esc(f"{percent(result.treated_rate)} / {percent(result.holdout_rate)}")
             if result else MISSING),
            (f'{esc(points(result.lift))}<span class="muted">{esc(ci_text(result))}</span>'
             if result else MISSING),
            _verdict(result),
        ])
    header = ("journey", "entered", "messages", "not sent", "vouchers issued / redeemed",
              "conversion treated / holdout", "lift and its 95% CI", "reading")
    return '<div class="scroll">' + _table(header, rows, "summary") + "</div>"


def _vouchers(journey: JourneyReport) -> str:
    if not journey.vouchers and not journey.rejected:
        return '<p class="muted">This journey issues no vouchers.</p>'
    rows = [[esc(v.offer), f"{v.issued:,}", f"{v.unreached:,}", f"{v.withheld:,}",
             f"{v.redeemed:,}", esc(percent(v.redemption_rate))] for v in journey.vouchers]
    out = _table(("offer", "issued", "of them no message reached", "withheld", "redeemed",
                  "redemption rate"), rows, "vouchers")
    if journey.rejected:
        out += _table(("redemption refused because", "times"),
                      [[esc(words(reason)), f"{count:,}"]
                       for reason, count in sorted(journey.rejected.items())], "rejected")
    return out


def _conversion(journey: JourneyReport) -> str:
    result = journey.conversion
    if result is None:
        return '<p class="muted">This journey has no goal, so no conversion is measured.</p>'
    table = _table(CONVERSION_HEADER, [["all customers", *_conversion_cells(result)]], "lift")
    table = f'<div class="scroll">{table}</div>'
    segments = _table(("segment at entry", *CONVERSION_HEADER[1:]),
                      [[esc(s.segment), *_conversion_cells(s.conversion)]
                       for s in journey.segments], "segments")
    segments = f'<div class="scroll">{segments}</div>'
    return (table + f'<p class="reading">{esc(reading(result))}.</p>'
            + "<h3>Conversion by segment at entry</h3>" + segments)


EXPERIMENT_VERDICTS = {"winner": "lift", "no_difference": "no_significant_lift",
                       "too_small": "no_holdout", "no_goal": "no_entries"}
"""The badge style of an experiment's verdict, by the conversion verdicts' classes."""


def experiment_html(experiment: Experiment) -> str:
    """A split's variants and the holdout, the variants against each other, the reading."""
    rows = []
    for v in experiment.variants:
        versus = v.vs_holdout.result if v.vs_holdout is not None else None
        rows.append([esc(v.variant), esc(percent(v.share, 0)), esc(v.target or MISSING),
                     f"{v.entered:,}", f"{v.messages:,}", f"{v.goals:,}", esc(percent(v.rate)),
                     esc(interval_text(v.ci)), esc(points(versus.lift if versus else None)),
                     esc(ci_text(versus)), _verdict(versus) if versus else MISSING])
    rows.append(["holdout (control)", MISSING, MISSING, f"{experiment.holdout:,}", "0",
                 f"{experiment.holdout_goals:,}", esc(percent(experiment.holdout_rate)),
                 esc(interval_text(experiment.holdout_ci)), "", "", ""])
    table = _table(("variant", "share", "goes to", "customers", "messages", "converted",
                    "rate", "95% CI of rate", "lift vs holdout", "95% CI of lift",
                    "reading"), rows, "variants")
    pairs = ""
    if experiment.comparisons:
        pairs = _table(("variants", "rates", "lift", "relative", "95% CI of lift", "reading"),
                       [[esc(f"{c.variant} vs {c.other}"),
                         esc(f"{percent(c.result.treated_rate)} / "
                             f"{percent(c.result.holdout_rate)}"),
                         esc(points(c.result.lift)), esc(percent(c.result.relative_lift, 0)),
                         esc(ci_text(c.result)), _verdict(c.result)]
                        for c in experiment.comparisons], "pairs")
        pairs = f'<div class="scroll">{pairs}</div>'
    badge = (f'<span class="verdict {EXPERIMENT_VERDICTS[experiment.verdict]}">'
             f'{esc(experiment.reading.partition(":")[0])}</span>')
    return (f'<h3>Experiment at step {esc(experiment.step_id)} {badge}</h3>'
            f'<div class="scroll">{table}</div>{pairs}'
            f'<p class="reading">{esc(experiment.reading)}.</p>')


def _experiments(journey: JourneyReport) -> str:
    return "".join(experiment_html(experiment) for experiment in journey.experiments)


def _details(journey: JourneyReport) -> str:
    if not journey.details:
        return ""
    rows = [[esc(counter_label(name)), f"{count:,}"]
            for name, count in sorted(journey.details.items())]
    return "<h3>Other counters</h3>" + _table(("counter", "count"), rows, "details")


def _journey(journey: JourneyReport) -> str:
    note = "" if journey.in_plan else (
        '<p class="key">This version is not in the given journey files: steps are shown '
        "from its counters only.</p>")
    messages = message_bars(journey.steps, f"Messages per step and channel, {journey.key}")
    endings = ", ".join(f"{ending_label(name)} {count:,}"
                        for name, count in journey.endings.items()) or "none yet"
    return (
        f'<section class="card journey" id="{esc(journey.key)}">'
        f"<h2>{esc(journey.name)}</h2>"
        f'<p class="key">{esc(journey.key)} · {journey.entered_all:,} entered: '
        f"{journey.entered:,} treated, {journey.entered_holdout:,} holdout · endings: "
        f"{esc(endings)}</p>{note}"
        '<div class="grid2"><div><h3>Flow</h3>' + flow_diagram(journey) + "</div><div>"
        + "<h3>Entries per week</h3>"
        + week_bars(journey.weeks, f"Entries per week, {journey.key}")
        + "<h3>Messages per step and channel</h3>"
        + (messages or '<p class="muted">No messages.</p>')
        + "<h3>Vouchers</h3>" + _vouchers(journey) + "</div></div>"
        + "<h3>Conversion (goal reached) treated vs holdout</h3>" + _conversion(journey)
        + _experiments(journey) + _details(journey) + "</section>"
    )


def _chain(report: Report) -> str:
    if not report.chain:
        return ""
    rows = [[esc(counter_label(name)), f"{count:,}"] for name, count in report.chain.items()]
    return ('<section class="card"><h2>Chain-wide counters</h2>'
            + _table(("counter", "count"), rows, "chain") + "</section>")


def render_html(report: Report, title: str = "Journey report") -> str:
    """The whole report as one HTML document."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1>"
        f'<p class="subtitle">{esc(report.facts.source)}</p>' + _facts(report)
        + '<section class="card"><h2>All journeys</h2>'
        '<p class="key">Conversion: share of customers who reached the journey\'s goal in its '
        "window. Lift: treated minus holdout, in percentage points; the 95% confidence "
        "interval (Newcombe) tells how sure that difference is.</p>"
        + _summary(report) + "</section>"
        + "".join(_journey(journey) for journey in report.journeys) + _chain(report)
        + "</main></body></html>\n"
    )
