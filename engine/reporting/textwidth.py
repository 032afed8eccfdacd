"""The width of a line of SVG text, so that charts are sized from their content.

The report names no web font: a browser draws its text in the system's sans-serif
(San Francisco, Segoe UI, Roboto or DejaVu Sans). The advance widths below are DejaVu Sans
2.37's (regular and bold, in 1/2048 em, read from the font files with fontTools), the widest
of those fonts, so a box or a chart sized with them holds its text in any of them.
"""

from __future__ import annotations

_EM = 2048
_FIRST = 32  # the tables cover U+0020..U+007E
# fmt: off
_REGULAR = (
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716,
    1087, 2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767,
    1532, 1612, 1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690,
    799, 1716, 1024, 1024, 1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186,
    569, 1995, 1298, 1253, 1300, 1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075,
    1303, 690, 1303, 1716,
)
_BOLD = (
    713, 934, 1067, 1716, 1425, 2052, 1786, 627, 936, 936, 1071, 1716, 778, 850, 778, 748,
    1425, 1425, 1425, 1425, 1425, 1425, 1425, 1425, 1425, 1425, 819, 819, 1716, 1716, 1716,
    1188, 2048, 1585, 1561, 1503, 1700, 1399, 1399, 1681, 1714, 762, 762, 1587, 1305, 2038,
    1714, 1741, 1501, 1741, 1577, 1475, 1397, 1663, 1585, 2259, 1579, 1483, 1485, 936, 748,
    936, 1716, 1024, 1024, 1382, 1466, 1214, 1466, 1389, 891, 1466, 1458, 702, 702, 1362,
    702, 2134, 1458, 1407, 1466, 1466, 1010, 1219, 979, 1458, 1335, 1892, 1321, 1335, 1192,
    1458, 748, 1458, 1716,
)
# fmt: on
_OTHER = {"\u00b7": 778, "\u2026": 2048, "\u2013": 1024, "\u2192": 1716, "\u20ac": 1425}
"""Middle dot, ellipsis, en dash, arrow and euro sign (the bold widths, the larger)."""
_UNKNOWN = _EM  # any other character: a full em, more than almost every glyph


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The width in pixels of `text` set in `size` px DejaVu Sans (an upper bound for the
    other system sans-serif fonts)."""
    table = _BOLD if bold else _REGULAR
    units = 0
    for char in text:
        code = ord(char) - _FIRST
        units += table[code] if 0 <= code < len(table) else _OTHER.get(char, _UNKNOWN)
    return units * size / _EM


def fit(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text`, or its start and end around an ellipsis, no wider than `width` pixels."""
    if text_width(text, size, bold) <= width:
        return text
    head, tail = len(text) // 2, len(text) - len(text) // 2
    while head + tail > 1:
        if head >= tail:
            head -= 1
        else:
            tail -= 1
        short = text[:head] + "\u2026" + (text[-tail:] if tail else "")
        if text_width(short, size, bold) <= width:
            return short
    return "\u2026"
