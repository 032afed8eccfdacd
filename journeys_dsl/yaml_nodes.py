"""YAML loaded into a tree of located nodes.

Journey files are composed with PyYAML's safe loader and walked node by node, so every
value keeps its line and column. Duplicate mapping keys, which PyYAML would silently
resolve to the last one, are kept on the mapping for the parser to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from journeys_dsl.errors import Problem

__all__ = [
    "Duplicate",
    "Entry",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "load_nodes",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_DOUBLE_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
    "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
    "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


@dataclass(eq=False)
class Node:
    """A YAML node with its 1-based start position."""

    line: int
    col: int

    @property
    def kind(self) -> str:
        """What the node is, as said to people: 'a mapping', 'a list', 'a value'."""
        return "a value"


@dataclass(eq=False)
class ScalarNode(Node):
    """A scalar: `text` as written (after unquoting), `value` as YAML types it.

    `style` is "" for plain scalars, "'" or '"' for quoted ones, "|" or ">" for blocks.
    """

    text: str = ""
    value: Any = None
    style: str = ""
    end_line: int = 0
    end_col: int = 0
    lines: tuple[str, ...] = field(default=(), repr=False)

    @property
    def kind(self) -> str:
        if self.value is None:
            return "an empty value"
        if isinstance(self.value, bool):
            return "true/false"
        if isinstance(self.value, int | float):
            return "a number"
        return "a value"

    @property
    def is_null(self) -> bool:
        return self.value is None

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column of character `offset` of `text` in the file.

        Exact for plain and quoted scalars; block scalars (`|`, `>`) give their start.
        """
        if self.style in ("|", ">"):
            return self.line, self.col
        if self.style == "" and self.line == self.end_line:
            return self.line, self.col + offset
        chars = self._char_positions()
        if chars is None:
            return self.line, self.col
        if not chars:
            return self.line, self.col + (1 if self.style else 0)
        if 0 <= offset < len(chars):
            line0, col0 = chars[offset]
            return line0 + 1, col0 + 1
        line0, col0 = chars[-1]
        return line0 + 1, col0 + 2

    def _char_positions(self) -> list[tuple[int, int]] | None:
        """0-based (line, col) of each character of `text`, or None when it cannot tell."""
        if not self.lines:
            return None
        quote = 1 if self.style in ("'", '"') else 0
        first, last = self.line - 1, self.end_line - 1
        chars: list[str] = []
        places: list[tuple[int, int]] = []
        breaks = 0
        for ln in range(first, last + 1):
            if ln >= len(self.lines):
                return None
            source = self.lines[ln]
            start = self.col - 1 + quote if ln == first else 0
            stop = self.end_col - 1 - quote if ln == last else len(source)
            segment = source[start:stop]
            if ln > first:
                stripped = segment.lstrip(" \t")
                start += len(segment) - len(stripped)
                segment = stripped
            if ln < last:
                segment = segment.rstrip(" \t")
            if ln > first:
                breaks += 1
                if not segment:
                    continue
                if chars:
                    fold = " " if breaks == 1 else "\n" * (breaks - 1)
                    for ch in fold:
                        chars.append(ch)
                        places.append(places[-1])
                breaks = 0
            if not self._decode(segment, ln, start, chars, places):
                return None
        return places if "".join(chars) == self.text else None

    def _decode(self, segment: str, ln: int, start: int, chars: list[str],
                places: list[tuple[int, int]]) -> bool:
        i = 0
        while i < len(segment):
            ch, width = segment[i], 1
            if self.style == "'" and segment.startswith("''", i):
                width = 2
            elif self.style == '"' and ch == "\\" and i + 1 < len(segment):
                code = segment[i + 1]
                if code in _HEX_ESCAPES:
                    digits = segment[i + 2 : i + 2 + _HEX_ESCAPES[code]]
                    try:
                        ch = chr(int(digits, 16))
                    except ValueError:
                        return False
                    width = 2 + len(digits)
                elif code in _DOUBLE_ESCAPES:
                    ch, width = _DOUBLE_ESCAPES[code], 2
                else:
                    return False
            chars.append(ch)
            places.append((ln, start + i))
            i += width
        return True


@dataclass(eq=False)
class Entry:
    """One `key: value` of a mapping."""

    key: ScalarNode
    value: Node


@dataclass(eq=False)
class Duplicate:
    """A key given twice in one mapping: `entry` is the later one, which is ignored."""

    entry: Entry
    first: ScalarNode


@dataclass(eq=False)
class MappingNode(Node):
    """A mapping; `entries` holds the first occurrence of each key, in file order."""

    entries: list[Entry] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "a mapping"

    def get(self, key: str) -> Entry | None:
        for entry in self.entries:
            if entry.key.text == key:
                return entry
        return None

    def keys(self) -> list[str]:
        return [entry.key.text for entry in self.entries]


@dataclass(eq=False)
class SequenceNode(Node):
    """A list."""

    items: list[Node] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "a list"


class _Builder:
    def __init__(self, text: str, filename: str) -> None:
        self.lines = tuple(text.splitlines())
        self.filename = filename
        self.problems: list[Problem] = []
        self.done: dict[int, Node] = {}
        self.active: set[int] = set()
        self.constructor = yaml.SafeLoader("")

    def problem(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.filename, mark.line + 1, mark.column + 1, message))

    def build(self, node: yaml.Node) -> Node:
        known = self.done.get(id(node))
        if known is not None:
            return known
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if id(node) in self.active:
            self.problem(node, "a YAML alias refers to itself; write the value out instead")
            return ScalarNode(line, col, text="", value=None, lines=self.lines)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                result: Node = self.mapping(node)
            elif isinstance(node, yaml.SequenceNode):
                result = SequenceNode(line, col, [self.build(item) for item in node.value])
            else:
                result = self.scalar(node)
        finally:
            self.active.discard(id(node))
        self.done[id(node)] = result
        return result

    def scalar(self, node: yaml.Node) -> ScalarNode:
        text = str(node.value)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            self.problem(node, f"unsupported YAML tag '{node.tag}'; remove it")
            value = text
        return ScalarNode(
            node.start_mark.line + 1, node.start_mark.column + 1, text=text, value=value,
            style=getattr(node, "style", None) or "",
            end_line=node.end_mark.line + 1, end_col=node.end_mark.column + 1,
            lines=self.lines,
        )

    def mapping(self, node: yaml.MappingNode) -> MappingNode:
        result = MappingNode(node.start_mark.line + 1, node.start_mark.column + 1)
        seen: dict[str, ScalarNode] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.problem(key_node, "YAML merge keys ('<<') are not supported in journeys; "
                                       "write the keys out")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "a key must be a plain name, not a list or a mapping")
                continue
            key = self.scalar(key_node)
            entry = Entry(key, self.build(value_node))
            first = seen.get(key.text)
            if first is not None:
                result.duplicates.append(Duplicate(entry, first))
                continue
            seen[key.text] = key
            result.entries.append(entry)
        return result


def load_nodes(text: str, filename: str) -> tuple[Node | None, list[Problem]]:
    """Compose `text` into located nodes; YAML errors come back as problems."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, filename)]
    except yaml.YAMLError as exc:
        return None, [Problem(filename, 1, 1, f"YAML error: {exc}")]
    if root is None:
        return None, [Problem(filename, 1, 1, "the file is empty; a journey starts with "
                                              "'journey: <id>'")]
    builder = _Builder(text, filename)
    tree = builder.build(root)
    return tree, builder.problems


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = exc.problem or exc.context or "invalid YAML"
    if message.startswith("but found another document"):
        return Problem(filename, line, col, "YAML syntax error: a journey file holds one "
                                            "document; remove the second '---'")
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if "found character '\\t'" in message:
        message += "; indent with spaces, not tabs"
    return Problem(filename, line, col, f"YAML syntax error: {message}")
