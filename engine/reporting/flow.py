"""The flow diagram of a journey: entry, steps in order, endings, and counted moves.

Steps stand in one column; a move to the next box is a straight arrow, any other move
(a branch that skips steps, an early end, a loop) runs in its own lane on the right.
Line widths grow with the number of customers who moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.reporting.model import Edge, JourneyReport, StepStats
from engine.reporting.svg import svg, text

BOX_X, BOX_W = 16, 340
ENTRY_H, STEP_H, END_H, GAP = 50, 74, 50, 44
LANE_GAP, LANE_START = 40, 26
EXIT_W, EXIT_GAP = 168, 12


@dataclass(frozen=True)
class _Box:
    y: float
    height: float

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


def _box(x: float, y: float, width: float, height: float, cls: str, lines: list[str]) -> str:
    return (f'<g class="{cls}"><rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" rx="8"/>' + "".join(lines) + "</g>")


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _step_lines(step: StepStats, y: float) -> list[str]:
    right = BOX_X + BOX_W - 12
    counts = [f"reached {step.reached:,}"]
    if step.holdout:
        counts.append(f"holdout {step.holdout:,}")
    if step.skipped:
        counts.append(f"skipped {step.skipped:,}")
    if step.waits:
        counts = [f"event came {step.wait_met:,}", f"timed out {step.wait_timeout:,}"]
        detail = "waiting, no messages"
    elif step.sent:
        detail = "sent " + ", ".join(f"{ch} {n:,}" for ch, n in step.sent.items())
    else:
        detail = "no messages"
    lines = [text(BOX_X + 12, y + 21, _clip(step.step_id, 26), "name"),
             text(right, y + 21, step.timing or ("not in the journey file" if not step.in_plan
                                                 else ""), "timing", "end"),
             text(BOX_X + 12, y + 43, " · ".join(counts), "counts"),
             text(BOX_X + 12, y + 62, detail, "sent")]
    return lines


def _arrow(x1: float, y1: float, x2: float, y2: float, width: float) -> str:
    return (f'<path class="edge" d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}" '
            f'stroke-width="{width:.1f}" marker-end="url(#arrow)"/>')


def _label(x: float, y: float, value: int, anchor: str = "start") -> str:
    content = f"{value:,}"
    pad = 4
    text_w = 7.2 * len(content) + 2 * pad
    left = x if anchor == "start" else x - text_w / 2
    return (f'<rect class="edge-label" x="{left:.1f}" y="{y - 12:.1f}" width="{text_w:.1f}" '
            f'height="17" rx="3"/>' + text(left + pad, y + 1, content, "edge-count"))


def flow_diagram(report: JourneyReport) -> str:
    """An SVG flow diagram of the journey version's steps and the moves between them."""
    steps = report.steps
    marker = "arrow-" + re.sub(r"[^A-Za-z0-9_-]", "-", report.key)
    entry = _Box(12, ENTRY_H)
    boxes: dict[str, _Box] = {}
    y = entry.bottom + GAP
    for step in steps:
        boxes[step.step_id] = _Box(y, STEP_H)
        y += STEP_H + GAP
    end = _Box(y, END_H)
    order = [step.step_id for step in steps] + ["end"]
    boxes_all = {**boxes, "end": end}
    peak = max([e.count for e in report.edges] + [report.entered + report.entered_holdout, 1])

    def stroke(count: int) -> float:
        return 1.5 + 4.5 * count / peak

    straight: list[Edge] = []
    laned: list[Edge] = []
    for edge in report.edges:
        if edge.target not in boxes_all or edge.source not in boxes:
            continue
        adjacent = order.index(edge.target) == order.index(edge.source) + 1
        (straight if adjacent else laned).append(edge)
    laned.sort(key=lambda e: (abs(order.index(e.target) - order.index(e.source)), e.source))
    lanes_x = [BOX_X + BOX_W + LANE_START + i * LANE_GAP for i in range(len(laned))]
    width = (lanes_x[-1] if lanes_x else BOX_X + BOX_W) + 70

    endings = [(name, count) for name, count in report.endings.items() if name != "completed"]
    started = report.entered + report.entered_holdout
    ongoing = max(started - sum(report.endings.values()), 0)
    if ongoing:
        endings.append(("still in the journey", ongoing))
    exits_y = end.bottom + 30
    per_row = max(1, int((width - BOX_X) // (EXIT_W + EXIT_GAP)))
    rows = (len(endings) + per_row - 1) // per_row
    height = exits_y + (rows * (END_H + EXIT_GAP) + 8 if endings else 0)
    width = max(width, BOX_X + min(len(endings), per_row) * (EXIT_W + EXIT_GAP) + 8)

    body = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" '
            'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
            '<path d="M0,0 L10,5 L0,10 z" class="arrow-head"/></marker></defs>']
    holdout_share = report.entered_holdout / started if started else 0.0
    body.append(_box(BOX_X, entry.y, BOX_W, ENTRY_H, "node entry", [
        text(BOX_X + 12, entry.y + 20, "entry", "name"),
        text(BOX_X + 12, entry.y + 40, f"{report.entered:,} treated · "
             f"{report.entered_holdout:,} holdout ({holdout_share:.0%})", "counts"),
    ]))
    if steps:
        first = boxes[steps[0].step_id]
        centre = BOX_X + BOX_W / 2
        body.append(_arrow(centre, entry.bottom, centre, first.y - 2, stroke(started)))
        body.append(_label(centre + 10, entry.bottom + GAP / 2 + 4, started))
    for step in steps:
        box = boxes[step.step_id]
        cls = "node step" if step.in_plan else "node step unplanned"
        body.append(_box(BOX_X, box.y, BOX_W, STEP_H, cls, _step_lines(step, box.y)))
    completed = report.endings.get("completed", 0)
    body.append(_box(BOX_X, end.y, BOX_W, END_H, "node end", [
        text(BOX_X + 12, end.y + 20, "end", "name"),
        text(BOX_X + 12, end.y + 40, f"{completed:,} completed the journey", "counts"),
    ]))
    for edge in straight:
        source, target = boxes[edge.source], boxes_all[edge.target]
        centre = BOX_X + BOX_W / 2
        body.append(_arrow(centre, source.bottom, centre, target.y - 2, stroke(edge.count)))
        body.append(_label(centre + 10, source.bottom + GAP / 2 + 4, edge.count))
    for lane_x, edge in zip(lanes_x, laned, strict=True):
        source, target = boxes[edge.source], boxes_all[edge.target]
        y1, y2 = source.middle - 8, target.middle + 8
        right = BOX_X + BOX_W
        body.append(f'<path class="edge" d="M{right:.1f},{y1:.1f} H{lane_x - 6:.1f} '
                    f'Q{lane_x:.1f},{y1:.1f} {lane_x:.1f},{y1 + (6 if y2 > y1 else -6):.1f} '
                    f'V{y2 + (-6 if y2 > y1 else 6):.1f} Q{lane_x:.1f},{y2:.1f} '
                    f'{lane_x - 6:.1f},{y2:.1f} H{right + 2:.1f}" '
                    f'stroke-width="{stroke(edge.count):.1f}" marker-end="url(#arrow)"/>')
        body.append(_label(lane_x, (y1 + y2) / 2, edge.count, "middle"))
    if endings:
        body.append(text(BOX_X, exits_y - 8, "left early or still in the journey", "caption"))
    for index, (name, count) in enumerate(endings):
        row, column = divmod(index, per_row)
        x = BOX_X + column * (EXIT_W + EXIT_GAP)
        y = exits_y + row * (END_H + EXIT_GAP)
        cls = "node ongoing" if name == "still in the journey" else "node exit"
        body.append(_box(x, y, EXIT_W, END_H, cls, [
            text(x + 10, y + 20, _clip(name.replace(":", ": ").replace("_", " "), 22), "name"),
            text(x + 10, y + 40, f"{count:,}", "counts"),
        ]))
    return svg("flow", width, height, body, f"Flow of {report.name} ({report.key})").replace(
        "#arrow)", f"#{marker})").replace('id="arrow"', f'id="{marker}"')
