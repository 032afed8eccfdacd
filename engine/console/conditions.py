"""A journey condition checked part by part, with the values each part read.

The condition is evaluated by the compiled expression the engine runs; each top-level part
(`a and b and c`, or `a or b`) is compiled by the same language and evaluated against the
same scope, so a failing part and the values it read are exactly what the engine saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from journeys_dsl.expressions import ExpressionSyntaxError, parse_expression
from journeys_dsl.plan import Expression


@dataclass(frozen=True)
class ValueRead:
    """A field path a condition read, and its value (None: missing)."""

    name: str
    value: Any


@dataclass(frozen=True)
class ConditionCheck:
    """A condition's truth, the values it read, and its top-level parts checked alone."""

    source: str
    passed: bool
    values: tuple[ValueRead, ...]
    parts: tuple[ConditionCheck, ...] = ()
    joiner: str = ""
    """How the parts combine: "and", "or", or "" when there is one part."""

    @property
    def failing(self) -> tuple[ConditionCheck, ...]:
        """The parts that are false (all of them for an `or` that failed)."""
        return tuple(part for part in self.parts if not part.passed)


def check_condition(expression: Expression, scope: Mapping[str, Any]) -> ConditionCheck:
    """Evaluate `expression` on `scope` as the engine does, with its parts and values."""
    source = expression.source
    passed = expression.test(scope)
    joiner, texts = "", [source]
    for word in ("or", "and"):  # `or` binds loosest: split on it first
        pieces = split_top_level(_unwrapped(source), word)
        if len(pieces) > 1:
            joiner, texts = word, pieces
            break
    parts: tuple[ConditionCheck, ...] = ()
    if joiner:
        try:
            compiled = [parse_expression(text) for text in texts]
        except ExpressionSyntaxError:  # a split the language reads otherwise: no parts
            compiled = []
        parts = tuple(ConditionCheck(part.source, part.test(scope), values_read(part, scope))
                      for part in compiled)
    return ConditionCheck(source, passed, values_read(expression, scope), parts,
                          joiner if parts else "")


def values_read(expression: Expression, scope: Mapping[str, Any]) -> tuple[ValueRead, ...]:
    """Every field path `expression` reads, with its value in `scope`, in source order."""
    compiled = parse_expression(expression.source)
    seen: dict[str, Any] = {}
    for ref in compiled.refs:
        name = ref.dotted
        if name not in seen:
            seen[name] = _plain(parse_expression(name).evaluate(scope))
    return tuple(ValueRead(name, value) for name, value in seen.items())


def split_top_level(source: str, word: str) -> list[str]:
    """`source` split at the keyword `word` outside strings, parentheses and lists."""
    parts: list[str] = []
    depth, quote, start, index = 0, "", 0, 0
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and _keyword_at(source, index, word):
            parts.append(source[start:index].strip())
            start = index = index + len(word)
            continue
        index += 1
    parts.append(source[start:].strip())
    return parts if all(parts) else [source]


def _keyword_at(source: str, index: int, word: str) -> bool:
    end = index + len(word)
    if source[index:end] != word:
        return False
    before = source[index - 1] if index else " "
    after = source[end] if end < len(source) else " "
    return not (before.isalnum() or before in "_.") and not (after.isalnum() or after == "_")


def _unwrapped(source: str) -> str:
    """`source` without parentheses around all of it."""
    text = source.strip()
    while text.startswith("(") and text.endswith(")") and _closes_at_end(text):
        text = text[1:-1].strip()
    return text


def _closes_at_end(text: str) -> bool:
    """Whether the parenthesis opening `text` is the one closing it."""
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index == len(text) - 1
    return False


def _plain(value: Any) -> Any:
    """A value to show: lazy views (segments, offers) become plain lists and dicts."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return sorted(value)
    return value
