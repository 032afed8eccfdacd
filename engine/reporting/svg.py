"""Inline SVG building blocks and charts: entries per week and messages per step and channel.

Every piece of text goes through `esc`; the output needs no script, font or network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from engine.reporting.labels import refusals_by_channel
from engine.reporting.model import StepStats, WeekEntries
from engine.reporting.textwidth import fit, text_width
from journeys_dsl.channels import channel_spec

TREATED = "#2563eb"
HOLDOUT = "#f59e0b"
NOT_SENT = "#cbd5e1"



def esc(value: object) -> str:
    """Text safe inside an SVG or HTML element or attribute."""
    return html.escape(str(value), quote=True)


def text(x: float, y: float, content: object, cls: str = "", anchor: str = "start",
         full: str | None = None) -> str:
    """A text element; `full`, when `content` is a shortened form of it, is its tooltip."""
    attrs = f' class="{esc(cls)}"' if cls else ""
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    tip = f"<title>{esc(full)}</title>" if full is not None and full != content else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{attrs}>{tip}{esc(content)}</text>'


def rect(x: float, y: float, width: float, height: float, fill: str, extra: str = "") -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" '
            f'height="{max(height, 0):.1f}" fill="{fill}"{extra}/>')


def svg(cls: str, width: float, height: float, body: Sequence[str], title: str) -> str:
    """An `<svg>` element scaling down to its container, with an accessible title."""
    w, h = math.ceil(width), math.ceil(height)
    return (f'<svg class="{esc(cls)}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
            f"<title>{esc(title)}</title>" + "".join(body) + "</svg>")


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return math.ceil(factor * power)
    return 10 * power


def channel_colour(channel: str) -> str:
    spec = channel_spec(channel)
    return spec.colour if spec is not None else "#475569"


def week_bars(weeks: Sequence[WeekEntries], title: str) -> str:
    """Stacked bars of treated and holdout entries per ISO week."""
    width, height, left, bottom, top = 680, 220, 44, 40, 26
    plot_w, plot_h = width - left - 12, height - top - bottom
    step = nice_ceiling(math.ceil(max((w.treated + w.holdout for w in weeks), default=0) / 4))
    peak = 4 * step
    body = [text(left, 14, "treated", "legend"), rect(left - 12, 5, 9, 9, TREATED),
            text(left + 78, 14, "holdout", "legend"), rect(left + 66, 5, 9, 9, HOLDOUT)]
    for tick in range(5):
        value = step * tick
        y = top + plot_h - plot_h * tick / 4
        body.append(f'<line class="grid" x1="{left}" x2="{width - 12}" y1="{y:.1f}" '
                    f'y2="{y:.1f}"/>')
        body.append(text(left - 6, y + 4, f"{value:,}", "axis", "end"))
    band = plot_w / max(len(weeks), 1)
    label_end = -math.inf
    every = max(1, math.ceil(64 / band))
    for index, week in enumerate(weeks):
        x = left + index * band + band * 0.15
        bar_w = band * 0.7
        treated_h = plot_h * week.treated / peak
        holdout_h = plot_h * week.holdout / peak
        base = top + plot_h
        tip = f"{week.week}: {week.treated} treated, {week.holdout} holdout"
        body.append(f"<g><title>{esc(tip)}</title>"
                    + rect(x, base - treated_h, bar_w, treated_h, TREATED)
                    + rect(x, base - treated_h - holdout_h, bar_w, holdout_h, HOLDOUT) + "</g>")
        if index % every == 0:
            centre, half = x + bar_w / 2, text_width(week.week, LABEL_SIZE) / 2
            centre = min(centre, width - 2 - half)  # the last label ends at the edge
            if centre - half >= label_end + 6:  # and is left out if it would overlap
                body.append(text(centre, base + 16, week.week, "axis", "middle"))
                label_end = centre + half
    if not weeks:
        body.append(text(width / 2, top + plot_h / 2, "no entries", "empty", "middle"))
    return svg("weeks", width, height, body, title)


LABEL_SIZE = 12
"""The font size of chart labels, in px (the report's CSS sets it for every `svg text`)."""
MAX_LABEL_W = 260
"""Step and channel labels wider than this are shortened, the whole label in a tooltip."""
TARGET_W, MIN_BAR_W, MAX_BAR_W = 560, 140, 280
"""Bars shorten (down to MIN_BAR_W) so that long notes keep the chart near its column's
width, where its text stays at its set size."""


def message_bars(steps: Sequence[StepStats], title: str) -> str:
    """One bar per step and channel: messages sent, then those held back (consent, address,
    caps). The drawing is as wide as its longest label and note need."""
    rows: list[tuple[str, str, int, int, str]] = []
    for step in steps:
        refused = refusals_by_channel(step)
        for channel in dict.fromkeys([*step.sent, *refused]):
            held, why = refused.get(channel, (0, ""))
            rows.append((step.step_id, channel, step.sent.get(channel, 0), held, why))
    if not rows:
        return ""
    labels = [f"{step_id} · {channel}" for step_id, channel, *_ in rows]
    shown = [fit(label, MAX_LABEL_W, LABEL_SIZE) for label in labels]
    label_w = max(text_width(label, LABEL_SIZE) for label in shown) + 18
    notes = [f"{sent:,} sent" + (f" · {why}" if held else "") for _, _, sent, held, why in rows]
    note_w = max(text_width(note, LABEL_SIZE) for note in notes) + 14
    bar_w = min(max(TARGET_W - label_w - note_w, MIN_BAR_W), MAX_BAR_W)
    row_h, top = 26, 8
    peak = max(sent + held for _, _, sent, held, _ in rows) or 1
    body = []
    right = label_w + bar_w
    for index, (_, channel, sent, held, _) in enumerate(rows):
        y = top + index * row_h
        sent_w, held_w = bar_w * sent / peak, bar_w * held / peak
        body.append(text(label_w - 10, y + 16, shown[index], "label", "end", labels[index]))
        body.append(rect(label_w, y + 4, sent_w, row_h - 8, channel_colour(channel)))
        body.append(rect(label_w + sent_w, y + 4, held_w, row_h - 8, NOT_SENT))
        note = notes[index]
        x = label_w + sent_w + held_w + 6
        body.append(text(x, y + 16, note, "value"))
        right = max(right, x + text_width(note, LABEL_SIZE))
    return svg("messages", right + 8, top + row_h * len(rows) + 8, body, title)
