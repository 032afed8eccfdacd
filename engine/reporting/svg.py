"""Inline SVG building blocks and charts: entries per week and messages per step and channel.

Every piece of text goes through `esc`; the output needs no script, font or network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from engine.reporting.model import StepStats, WeekEntries

TREATED = "#2563eb"
HOLDOUT = "#f59e0b"
NOT_SENT = "#cbd5e1"
CHANNEL_COLOURS = {
    "email": "#2563eb", "sms": "#16a34a", "whatsapp": "#0d9488", "telegram": "#0284c7",
    "push": "#9333ea", "webhook": "#64748b",
}


def esc(value: object) -> str:
    """Text safe inside an SVG or HTML element or attribute."""
    return html.escape(str(value), quote=True)


def text(x: float, y: float, content: object, cls: str = "", anchor: str = "start") -> str:
    attrs = f' class="{esc(cls)}"' if cls else ""
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    return f'<text x="{x:.1f}" y="{y:.1f}"{attrs}>{esc(content)}</text>'


def rect(x: float, y: float, width: float, height: float, fill: str, extra: str = "") -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" '
            f'height="{max(height, 0):.1f}" fill="{fill}"{extra}/>')


def svg(cls: str, width: float, height: float, body: Sequence[str], title: str) -> str:
    """An `<svg>` element scaling down to its container, with an accessible title."""
    return (f'<svg class="{esc(cls)}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">'
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
    return CHANNEL_COLOURS.get(channel, "#475569")


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
            body.append(text(x + bar_w / 2, base + 16, week.week, "axis", "middle"))
    if not weeks:
        body.append(text(width / 2, top + plot_h / 2, "no entries", "empty", "middle"))
    return svg("weeks", width, height, body, title)


def message_bars(steps: Sequence[StepStats], title: str) -> str:
    """One bar per step and channel: messages sent, then those held back (consent, caps)."""
    rows: list[tuple[str, str, int, int, str]] = []
    for step in steps:
        channels = list(dict.fromkeys([*step.sent, *(k.split(":", 1)[1] for k in step.not_sent)]))
        for channel in channels:
            reasons = {k.split(":", 1)[0]: v for k, v in step.not_sent.items()
                       if k.split(":", 1)[1] == channel}
            why = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in reasons.items())
            rows.append((step.step_id, channel, step.sent.get(channel, 0),
                         sum(reasons.values()), why))
    if not rows:
        return ""
    label_w, bar_w, row_h, top = 190, 280, 26, 8
    notes = [f"{sent:,} sent" + (f" · {why}" if held else "") for _, _, sent, held, why in rows]
    # room for the longest note after a full bar (12px text: under 7px a character)
    note_w = max(210, 7 * max(len(note) for note in notes) + 12)
    width, height = label_w + bar_w + note_w, top + row_h * len(rows) + 8
    peak = max(sent + held for _, _, sent, held, _ in rows) or 1
    body = []
    for index, (step_id, channel, sent, held, _) in enumerate(rows):
        y = top + index * row_h
        sent_w, held_w = bar_w * sent / peak, bar_w * held / peak
        body.append(text(label_w - 10, y + 16, f"{step_id} · {channel}", "label", "end"))
        body.append(rect(label_w, y + 4, sent_w, row_h - 8, channel_colour(channel)))
        body.append(rect(label_w + sent_w, y + 4, held_w, row_h - 8, NOT_SENT))
        body.append(text(label_w + sent_w + held_w + 6, y + 16, notes[index], "value"))
    return svg("messages", width, height, body, title)
