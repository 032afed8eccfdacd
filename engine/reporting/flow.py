"""The flow diagram of a journey: entry, steps in order, endings, and counted moves.

Steps stand in one column; a move to the next box is a straight arrow, any other move
(a branch that skips steps, an early end, a loop) runs in its own lane on the right. Every
arrow carries its count and, for a branch arm or a wait, the condition of the move. Line
widths grow with the number of customers who moved. Boxes, lanes and the drawing are sized
from their text (`textwidth`), so nothing is cut; a text longer than its room is shortened
in the middle with the whole of it as a tooltip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.reporting.labels import ending_label, joined, step_counts
from engine.reporting.model import Edge, JourneyReport, StepStats
from engine.reporting.svg import svg, text
from engine.reporting.textwidth import fit, text_width

BOX_X, MIN_BOX_W, MAX_BOX_W, PAD = 16, 340, 520, 12
ENTRY_H, STEP_H, TIMING_LINE, END_H, GAP = 50, 74, 18, 50, 44
LANE_GAP, LANE_START = 40, 26
EXIT_W, MAX_EXIT_W, EXIT_GAP = 168, 300, 12
NAME_SIZE, TEXT_SIZE, EDGE_SIZE = 13, 12, 11
"""Font sizes of box titles, box text and arrow labels, in px (see the report's CSS)."""
MAX_CONDITION_W = 300
"""Arrow labels wider than this are shortened, the whole condition in a tooltip."""


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


def _timing(step: StepStats) -> str:
    return step.timing or ("not in the journey file" if not step.in_plan else "")


def _detail(step: StepStats) -> str:
    if step.waits:
        return "waiting, no messages"
    if step.split and not step.sent:
        return f"split: {step.split}"
    if step.sent:
        return "sent " + ", ".join(f"{ch} {n:,}" for ch, n in step.sent.items())
    return "no messages"


def _box_width(report: JourneyReport) -> float:
    """Wide enough for the widest count or detail line, within MIN_BOX_W..MAX_BOX_W."""
    widest = max([text_width(line, TEXT_SIZE) for step in report.steps
                  for line in (joined(step_counts(step)), _detail(step))] + [0.0])
    entry = f"{report.entered:,} treated · {report.entered_holdout:,} holdout (100%)"
    widest = max(widest, text_width(entry, TEXT_SIZE))
    return min(max(MIN_BOX_W, widest + 2 * PAD), MAX_BOX_W)


def _shares_line(step: StepStats, box_w: float) -> bool:
    """Whether the step's title and timing fit side by side on the box's first line."""
    name_w = text_width(step.step_id, NAME_SIZE, bold=True)
    return name_w + 16 + text_width(_timing(step), TEXT_SIZE) <= box_w - 2 * PAD


def _step_lines(step: StepStats, y: float, box_w: float) -> list[str]:
    right = BOX_X + box_w - PAD
    room = box_w - 2 * PAD
    name = fit(step.step_id, room, NAME_SIZE, bold=True)
    lines = [text(BOX_X + PAD, y + 21, name, "name", full=step.step_id)]
    shift = 0.0
    if _shares_line(step, box_w):
        lines.append(text(right, y + 21, _timing(step), "timing", "end"))
    else:
        shift = TIMING_LINE
        lines.append(text(BOX_X + PAD, y + 21 + shift, fit(_timing(step), room, TEXT_SIZE),
                          "timing", full=_timing(step)))
    counts, detail = joined(step_counts(step)), _detail(step)
    lines.append(text(BOX_X + PAD, y + 43 + shift, fit(counts, room, TEXT_SIZE), "counts",
                      full=counts))
    lines.append(text(BOX_X + PAD, y + 62 + shift, fit(detail, room, TEXT_SIZE), "sent",
                      full=detail))
    return lines


def _arrow(x1: float, y1: float, x2: float, y2: float, width: float) -> str:
    return (f'<path class="edge" d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}" '
            f'stroke-width="{width:.1f}" marker-end="url(#arrow)"/>')


def _label(x: float, y: float, edge_count: int, condition: str = "") -> tuple[str, float]:
    """An arrow's label, "1,204 · if offer.dessert.redeemed", starting at `x`; and its right
    edge."""
    full = f"{edge_count:,}" + (f" · {condition}" if condition else "")
    content = fit(full, MAX_CONDITION_W, EDGE_SIZE, bold=True)
    pad = 4
    text_w = text_width(content, EDGE_SIZE, bold=True) + 2 * pad
    return ((f'<rect class="edge-label" x="{x:.1f}" y="{y - 12:.1f}" width="{text_w:.1f}" '
             f'height="17" rx="3"/>' + text(x + pad, y + 1, content, "edge-count", full=full)),
            x + text_w)


def flow_diagram(report: JourneyReport) -> str:
    """An SVG flow diagram of the journey version's steps and the moves between them."""
    steps = report.steps
    marker = "arrow-" + re.sub(r"[^A-Za-z0-9_-]", "-", report.key)
    box_w = _box_width(report)
    entry = _Box(12, ENTRY_H)
    boxes: dict[str, _Box] = {}
    y = entry.bottom + GAP
    for step in steps:
        box_h = STEP_H + (0 if _shares_line(step, box_w) else TIMING_LINE)
        boxes[step.step_id] = _Box(y, box_h)
        y += box_h + GAP
    end = _Box(y, END_H)
    order = [step.step_id for step in steps] + ["end"]
    boxes_all = {**boxes, "end": end}
    peak = max([e.count for e in report.edges] + [report.entered_all, 1])

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
    lanes_x = [BOX_X + box_w + LANE_START + i * LANE_GAP for i in range(len(laned))]
    right_edge = (lanes_x[-1] if lanes_x else BOX_X + box_w) + 12

    endings = [(ending_label(name), count) for name, count in report.endings.items()
               if name != "completed"]
    ongoing = max(report.entered_all - sum(report.endings.values()), 0)
    if ongoing:
        endings.append(("still in the journey", ongoing))
    exit_w = min(max([EXIT_W] + [text_width(name, NAME_SIZE, bold=True) + 20
                                 for name, _ in endings]), MAX_EXIT_W)

    body = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" '
            'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
            '<path d="M0,0 L10,5 L0,10 z" class="arrow-head"/></marker></defs>']
    started = report.entered_all
    holdout_share = report.entered_holdout / started if started else 0.0
    body.append(_box(BOX_X, entry.y, box_w, ENTRY_H, "node entry", [
        text(BOX_X + PAD, entry.y + 20, "entry", "name"),
        text(BOX_X + PAD, entry.y + 40, f"{report.entered:,} treated · "
             f"{report.entered_holdout:,} holdout ({holdout_share:.0%})", "counts"),
    ]))
    centre = BOX_X + box_w / 2
    if steps:
        first = boxes[steps[0].step_id]
        body.append(_arrow(centre, entry.bottom, centre, first.y - 2, stroke(started)))
        label, right = _label(centre + 10, entry.bottom + GAP / 2 + 4, started)
        body.append(label)
        right_edge = max(right_edge, right)
    for step in steps:
        box = boxes[step.step_id]
        cls = "node step" if step.in_plan else "node step unplanned"
        body.append(_box(BOX_X, box.y, box_w, box.height, cls,
                         _step_lines(step, box.y, box_w)))
    completed = report.endings.get("completed", 0)
    body.append(_box(BOX_X, end.y, box_w, END_H, "node end", [
        text(BOX_X + PAD, end.y + 20, "end", "name"),
        text(BOX_X + PAD, end.y + 40, f"{completed:,} completed the journey", "counts"),
    ]))
    for edge in straight:
        source, target = boxes[edge.source], boxes_all[edge.target]
        body.append(_arrow(centre, source.bottom, centre, target.y - 2, stroke(edge.count)))
        label, right = _label(centre + 10, source.bottom + GAP / 2 + 4, edge.count,
                              edge.condition)
        body.append(label)
        right_edge = max(right_edge, right)
    for lane_x, edge in zip(lanes_x, laned, strict=True):
        source, target = boxes[edge.source], boxes_all[edge.target]
        y1, y2 = source.middle - 8, target.middle + 8
        box_right = BOX_X + box_w
        body.append(f'<path class="edge" d="M{box_right:.1f},{y1:.1f} H{lane_x - 6:.1f} '
                    f'Q{lane_x:.1f},{y1:.1f} {lane_x:.1f},{y1 + (6 if y2 > y1 else -6):.1f} '
                    f'V{y2 + (-6 if y2 > y1 else 6):.1f} Q{lane_x:.1f},{y2:.1f} '
                    f'{lane_x - 6:.1f},{y2:.1f} H{box_right + 2:.1f}" '
                    f'stroke-width="{stroke(edge.count):.1f}" marker-end="url(#arrow)"/>')
        label, right = _label(lane_x - 10, (y1 + y2) / 2, edge.count, edge.condition)
        body.append(label)
        right_edge = max(right_edge, right)

    width = max(right_edge + 8, BOX_X + box_w + 16)
    per_row = max(1, int((width - BOX_X) // (exit_w + EXIT_GAP)))
    width = max(width, BOX_X + min(len(endings), per_row) * (exit_w + EXIT_GAP) + 8)
    exits_y = end.bottom + 30
    rows = (len(endings) + per_row - 1) // per_row
    height = exits_y + (rows * (END_H + EXIT_GAP) + 8 if endings else 0)
    if endings:
        body.append(text(BOX_X, exits_y - 8, "left early or still in the journey", "caption"))
    for index, (name, count) in enumerate(endings):
        row, column = divmod(index, per_row)
        x = BOX_X + column * (exit_w + EXIT_GAP)
        y = exits_y + row * (END_H + EXIT_GAP)
        cls = "node ongoing" if name == "still in the journey" else "node exit"
        body.append(_box(x, y, exit_w, END_H, cls, [
            text(x + 10, y + 20, fit(name, exit_w - 20, NAME_SIZE, bold=True), "name",
                 full=name),
            text(x + 10, y + 40, f"{count:,}", "counts"),
        ]))
    return svg("flow", width, height, body, f"Flow of {report.name} ({report.key})").replace(
        "#arrow)", f"#{marker})").replace('id="arrow"', f'id="{marker}"')
