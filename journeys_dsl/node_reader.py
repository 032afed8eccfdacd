"""Reading YAML nodes with the journey language's errors: the base of every file parser.

`NodeReader` reports each problem with its place in the file and goes on, so a person sees
everything wrong in one run. It reads mappings, lists, scalars, identifiers, choices,
durations and conditions (with the fields they may read); the journey grammar, the
segments file and the policies file build on it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from journeys_dsl import fields, plan
from journeys_dsl.durations import DurationError, parse_duration
from journeys_dsl.errors import Problem
from journeys_dsl.expressions import (
    ExpressionSyntaxError,
    FieldRef,
    LiteralComparison,
    parse_expression,
)
from journeys_dsl.vocabulary import Vocabulary
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["ID_PATTERN", "NodeReader", "Scope", "did_you_mean", "join_path"]

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
_ID = re.compile(ID_PATTERN)
_ID_RULE = "use lowercase letters, digits and _, starting with a letter"
_EQUALITY_OR_MEMBERSHIP = ("==", "!=", "in", "not in")
"""The comparisons whose literal text must be one of the field's known values."""


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    """"; did you mean 'x'?" when a close match exists, else ""."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Scope:
    """What a condition may read where it is written."""

    event_type: str | None
    """The event type the condition sees; None when unknown or when there is no event."""
    no_event: str | None = None
    """Why `event.*` cannot be read here; None when it can."""
    no_enrollment: str | None = None
    """Why `offer.*` and `journey.*` cannot be read here; None when they can."""


class NodeReader:
    """Reads located YAML nodes of one file, collecting problems and warnings."""

    def __init__(self, filename: str, vocabulary: Vocabulary | None = None) -> None:
        self.filename = filename
        self.vocabulary = vocabulary
        """Known values of text fields; None: literal text is not checked."""
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    # ------------------------------------------------------------------ reporting

    def warn(self, where: tuple[int, int], message: str, path: str) -> None:
        """A likely mistake that does not stop the journey."""
        line, col = where
        self.warnings.append(Problem(self.filename, line, col, message, path, warning=True))

    def report(self, where: Node | tuple[int, int], message: str, path: str) -> None:
        line, col = (where.line, where.col) if isinstance(where, Node) else where
        self.problems.append(Problem(self.filename, line, col, message, path))

    def mapping(self, node: Node, what: str, path: str) -> MappingNode | None:
        if isinstance(node, MappingNode):
            return node
        self.report(node, f"{what} must be a mapping of 'key: value' lines, not {node.kind}",
                    path)
        return None

    def sequence(self, node: Node, what: str, path: str, example: str) -> SequenceNode | None:
        if isinstance(node, SequenceNode):
            return node
        self.report(node, f"{what} must be a list ('- ' items, e.g. {example}), "
                          f"not {node.kind}", path)
        return None

    def keys(self, node: MappingNode, allowed: Sequence[str], where: str, path: str,
             duplicate: str = "key") -> None:
        """Report unknown and duplicate keys of `node`."""
        for entry in node.entries:
            key = entry.key.text
            if key not in allowed:
                self.report(entry.key, f"unknown key '{key}' {where}"
                                       f"{did_you_mean(key, allowed)}", join_path(path, key))
        for dup in node.duplicates:
            key = dup.entry.key.text
            self.report(dup.entry.key, f"duplicate {duplicate} '{key}' {where} (first given "
                                       f"at line {dup.first.line}); give each key once",
                        join_path(path, key))

    def require(self, node: MappingNode, key: str, where: str, path: str) -> Node | None:
        entry = node.get(key)
        if entry is None:
            self.report(node, f"missing required key '{key}' {where}", join_path(path, key))
            return None
        return entry.value

    def optional(self, node: MappingNode, key: str) -> Node | None:
        entry = node.get(key)
        return entry.value if entry is not None else None

    def scalar(self, node: Node, what: str, path: str) -> ScalarNode | None:
        if isinstance(node, ScalarNode) and not node.is_null:
            return node
        if isinstance(node, ScalarNode):
            self.report(node, f"{what} is empty; give it a value", path)
        else:
            self.report(node, f"{what} must be a single value, not {node.kind}", path)
        return None

    def text(self, node: Node, what: str, path: str) -> str | None:
        scalar = self.scalar(node, what, path)
        if scalar is None:
            return None
        if not scalar.text.strip():
            self.report(node, f"{what} is empty", path)
            return None
        return scalar.text

    def pattern(self, node: Node, what: str, path: str, regex: re.Pattern[str],
                rule: str) -> str | None:
        value = self.text(node, what, path)
        if value is None:
            return None
        if not regex.match(value):
            self.report(node, f"{what} '{value}' is not valid: {rule}", path)
        return value

    def ident(self, node: Node, what: str, path: str) -> str | None:
        return self.pattern(node, what, path, _ID, _ID_RULE)

    def choice(self, node: Node, what: str, path: str, options: Sequence[str]) -> str | None:
        value = self.text(node, what, path)
        if value is None:
            return None
        if value not in options:
            hint = did_you_mean(value, options) or f"; use one of: {', '.join(options)}"
            self.report(node, f"unknown {what} '{value}'{hint}", path)
            return None
        return value

    def duration(self, node: Node, what: str, path: str, *, allow_negative: bool = False,
                 positive: bool = True) -> int | None:
        scalar = self.scalar(node, what, path)
        if scalar is None:
            return None
        try:
            seconds = parse_duration(scalar.text, allow_negative=allow_negative)
        except DurationError as exc:
            self.report(node, exc.message, path)
            return None
        if positive and seconds <= 0:
            self.report(node, f"{what} must be longer than 0", path)
            return None
        return seconds

    # ------------------------------------------------------------------ expressions

    def expression(self, node: Node, path: str, scope: Scope) -> plan.Expression | None:
        scalar = self.scalar(node, f"'{path.rsplit('.', 1)[-1]}'", path)
        if scalar is None:
            return None
        try:
            compiled = parse_expression(scalar.text)
        except ExpressionSyntaxError as exc:
            self.report(scalar.position(exc.offset), exc.message, path)
            return None
        ok = True
        for ref in compiled.refs:
            problem = self.field_problem(ref, scope)
            if problem is not None:
                depth, message = problem
                offset = _segment_offset(scalar.text, ref, depth)
                self.report(scalar.position(offset), message, path)
                ok = False
        if ok and self.vocabulary is not None:
            for literal in compiled.literal_comparisons:
                text = literal.value
                if literal.op not in _EQUALITY_OR_MEMBERSHIP or not isinstance(text, str):
                    continue
                domain = self.vocabulary.domain(literal.field.dotted, scope.event_type)
                if domain is not None and text not in domain.values:
                    self.report(scalar.position(literal.offset),
                                domain.refusal(text, did_you_mean(text, domain.values)), path)
                    ok = False
        for literal in compiled.literal_comparisons if ok else ():
            if literal.op in ("in", "not in"):
                continue
            kind = (self.vocabulary.kind(literal.field.dotted, scope.event_type)
                    if self.vocabulary is not None else fields.FIELD_KINDS.get(
                        literal.field.dotted))
            mismatch = _kind_mismatch(literal, kind)
            if mismatch is not None:
                self.warn(scalar.position(literal.offset), mismatch, path)
        return compiled if ok else None

    def field_problem(self, ref: FieldRef, scope: Scope) -> tuple[int, str] | None:
        """(index of the path segment at fault, message) or None when `ref` is readable."""
        root, path = ref.root, ref.path
        if root not in fields.ROOTS:
            hint = did_you_mean(root, fields.ROOTS)
            if hint:
                return 0, f"unknown name '{root}' in the condition{hint}"
            if not path:
                return 0, (f"unknown name '{root}' in the condition; put text in quotes "
                           f"(\"{root}\") or read a field such as customer.visit_count")
            return 0, (f"unknown name '{root}' in the condition; fields start with event., "
                       "customer., venue., offer. or journey.")
        if root == "event":
            if scope.no_event is not None:
                return 0, scope.no_event
            if scope.event_type is None and path:
                return None  # the event type is itself wrong; reported there
            event_fields = (self.vocabulary.event_fields if self.vocabulary is not None
                            else fields.EVENT_FIELDS)
            known = (*fields.EVENT_COMMON, *event_fields.get(scope.event_type or "", ()))
            return self.field_of(path, known, f"a {scope.event_type} event", "event",
                                 "event.type")
        if root in ("offer", "journey") and scope.no_enrollment is not None:
            return 0, f"'{ref.dotted}' cannot be read here: {scope.no_enrollment}"
        if root == "customer":
            return self.field_of(path, fields.CUSTOMER_FIELDS, "the customer", "customer",
                                 "customer.visit_count")
        if root == "venue":
            return self.field_of(path, fields.VENUE_FIELDS, "the venue", "venue",
                                 "venue.avg_amount")
        if root == "journey":
            return self.field_of(path, fields.ENROLLMENT_FIELDS, "the journey", "journey",
                                 "journey.days_in")
        return self.offer_field(path)

    @staticmethod
    def field_of(path: tuple[str, ...], known: Sequence[str], owner: str, root: str,
                 example: str) -> tuple[int, str] | None:
        if not path:
            return 0, f"'{root}' needs a field, e.g. {example}"
        if path[0] not in known:
            return 1, f"unknown field '{path[0]}' of {owner}{did_you_mean(path[0], known)}"
        return None

    def offer_field(self, path: tuple[str, ...]) -> tuple[int, str] | None:
        """Offers belong to a journey: outside one, `offer.*` cannot be read."""
        return 0, "'offer.*' can only be read in a journey's conditions"


def _kind_mismatch(literal: LiteralComparison, kind: str | None) -> str | None:
    """What is wrong with comparing a text field with a number, or the reverse."""
    value = literal.value
    outcome = "always true" if literal.op == "!=" else "never true"
    if kind == "text" and not isinstance(value, str):
        return (f"'{literal.field.dotted}' is text but '{literal.op}' compares it with the "
                f"number {value}: that is {outcome}; compare it with text in quotes")
    if kind == "number" and isinstance(value, str):
        return (f"'{literal.field.dotted}' is a number but '{literal.op}' compares it with "
                f"the text '{value}': that is {outcome}; write a number without quotes")
    return None


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _segment_offset(source: str, ref: FieldRef, depth: int) -> int:
    """Offset in `source` of the root (depth 0) or of path segment `depth` of `ref`."""
    offset = ref.offset
    if depth == 0:
        return offset
    position = offset + len(ref.root)
    for segment in ref.path[:depth]:
        found = source.find(segment, position)
        if found < 0:
            return offset
        position = found + len(segment)
        offset = found
    return offset
