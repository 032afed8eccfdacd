"""The condition language of journeys: a small, safe expression language.

    event.stars == 5 and customer.visit_count == 1
    days_since(customer.last_visit_at) > 30 or has_tag("vip")

Source text is tokenized and parsed by hand into an AST. The AST is then translated into
the body of one Python function and compiled with `compile()`. That generated code is
built only from fixed templates, operator spellings from a fixed table, helper names of
this module and generated names (`_k0`, `_t3`); every literal or name from the source
(strings, numbers, field names) is passed in as a bound constant, never spliced into the
code, and the function runs without builtins. Source text is never given to `eval`.

Semantics are forgiving, so a marketer never sees a crash: missing paths read as null,
arithmetic with null or with the wrong types gives null, ordering comparisons involving
null or mismatched types are false, and division by zero gives null.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import partial
from typing import Any

from engine.errors import JourneysError

__all__ = [
    "FUNCTIONS",
    "CompiledExpression",
    "ExpressionSyntaxError",
    "FieldRef",
    "LiteralComparison",
    "parse_expression",
    "register_view",
]

Scope = Mapping[str, Any]

MAX_NESTING = 32
"""Deepest allowed nesting of parentheses, lists, calls, `not` and unary minus."""
MAX_DEPTH = 48
"""Deepest allowed expression tree (a chain `a + b + c` is as deep as it is long)."""

_MS_PER_DAY = 86_400_000
_MS_PER_HOUR = 3_600_000
_ROUNDING = Context(prec=1000)


class ExpressionSyntaxError(JourneysError, ValueError):
    """A condition that cannot be parsed; `offset` is 0-based into `source`."""

    code = "expression_syntax"

    def __init__(self, message: str, offset: int, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.source = source

    @property
    def column(self) -> int:
        """1-based column of the problem, as shown to people."""
        return self.offset + 1

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FieldRef:
    """A field path read by an expression, e.g. `offer.dessert.redeemed`."""

    root: str
    path: tuple[str, ...]
    offset: int

    @property
    def dotted(self) -> str:
        """The path as written: `root.a.b`."""
        return ".".join((self.root, *self.path))


@dataclass(frozen=True, slots=True)
class LiteralComparison:
    """A field compared with a literal number or text: `customer.segment > 3`,
    `customer.segment == 'regular'`, `'vip' in customer.segments`, and one for each value
    of `event.daypart in ['lunch', 'dinner']`. `offset` is the literal's."""

    field: FieldRef
    op: str
    value: str | int | float
    offset: int


# --------------------------------------------------------------------------- runtime

_NUMS = (int, float)


def _is_num(x: object) -> bool:
    return isinstance(x, _NUMS) and x.__class__ is not bool


def _truth(v: Any) -> bool:
    """Truthiness that never raises; null is false."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    try:
        return bool(v)
    except Exception:
        return False


_VIEW_TYPES: set[Any] = set()
"""Classes whose `get(name)` reads a field: the scope's lazy views."""


def register_view(cls: type) -> type:
    """Mark a class as a view (a `get(name)` of its fields), so that paths and `in` go
    straight to its `get`; usable as a class decorator. A view may also define a class
    method `field_getter(name)` giving a function equal to `lambda view: view.get(name)`,
    which paths then call directly."""
    _VIEW_TYPES.add(cls)
    return cls


def _step(v: Any, name: str) -> Any:
    """`v.name`: `v.get(name)` when `v` is mapping-like, else null."""
    if v is None:
        return None
    if v.__class__ is dict or v.__class__ in _VIEW_TYPES:
        return v.get(name)
    get = getattr(v, "get", None)
    return get(name) if callable(get) else None


class _FieldReader(dict[type, Callable[[Any], Any]]):
    """`v.name` for one name, as a function of `v` chosen by `v`'s class on first use."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        name = self.name
        reader: Callable[[Any], Any]
        if cls is not dict and cls not in _VIEW_TYPES:
            reader = partial(_step, name=name)
        elif (field_getter := getattr(cls, "field_getter", None)) is not None:
            reader = field_getter(name)
        else:
            reader = operator.methodcaller("get", name)
        self[cls] = reader
        return reader


def _eq(a: Any, b: Any) -> bool:
    """Equality where a boolean only equals a boolean and mismatches are just unequal."""
    if a is None or b is None:
        return a is b
    if a.__class__ is bool or b.__class__ is bool:
        return a.__class__ is b.__class__ and a == b
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _orderable(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return isinstance(b, str)
    return _is_num(a) and _is_num(b)


def _lt(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a < b


def _le(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a <= b


def _gt(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a > b


def _ge(a: Any, b: Any) -> bool:
    return _orderable(a, b) and a >= b


def _is_collection(c: Any) -> bool:
    return c is not None and (
        isinstance(c, str | list | tuple | set | frozenset | Mapping) or hasattr(c, "get")
    )


def _in(x: Any, c: Any) -> bool:
    """`x in c`: substring for text, element (by `==`) for lists, key for mappings."""
    if c is None:
        return False
    if c.__class__ in _VIEW_TYPES:
        return isinstance(x, str) and c.get(x) is not None
    if isinstance(c, str):
        return isinstance(x, str) and x in c
    if isinstance(c, list | tuple):
        return any(_eq(x, item) for item in c)
    if isinstance(c, set | frozenset):
        return any(_eq(x, item) for item in c)
    if isinstance(c, Mapping) or callable(getattr(c, "get", None)):
        if not isinstance(x, str):
            return False
        return x in c if c.__class__ is dict else c.get(x) is not None
    return False


def _not_in(x: Any, c: Any) -> bool:
    """`x not in c`; false (like any comparison) when `c` is null or not a collection."""
    if not _is_collection(c):
        return False
    if isinstance(c, str) and not isinstance(x, str):
        return False
    return not _in(x, c)


def _in_text(x: Any, strings: frozenset[str]) -> bool:
    """`x in [...]` against a list of string literals."""
    return isinstance(x, str) and str(x) in strings


def _add(a: Any, b: Any) -> Any:
    try:
        if _is_num(a) and _is_num(b):
            return a + b
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            return [*a, *b]
    except (ArithmeticError, ValueError, TypeError):
        pass
    return None


def _numeric(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if not (_is_num(a) and _is_num(b)):
            return None
        try:
            return fn(a, b)
        except (ArithmeticError, ValueError, TypeError):
            return None

    return apply


_sub = _numeric(operator.sub)
_mul = _numeric(operator.mul)
_div = _numeric(operator.truediv)
_mod = _numeric(operator.mod)


def _neg(a: Any) -> Any:
    return -a if _is_num(a) else None


# --------------------------------------------------------------------------- functions


def _span(scope: Scope, ts: Any, unit_ms: int, forward: bool) -> float | None:
    now = scope.get("now")
    if not (_is_num(now) and _is_num(ts)):
        return None
    try:
        return float((ts - now) if forward else (now - ts)) / unit_ms
    except (ArithmeticError, ValueError):
        return None


def _fn_days_since(scope: Scope, ts: Any) -> float | None:
    return _span(scope, ts, _MS_PER_DAY, forward=False)


def _fn_hours_since(scope: Scope, ts: Any) -> float | None:
    return _span(scope, ts, _MS_PER_HOUR, forward=False)


def _fn_days_until(scope: Scope, ts: Any) -> float | None:
    return _span(scope, ts, _MS_PER_DAY, forward=True)


def _fn_lower(s: Any) -> str | None:
    return s.lower() if isinstance(s, str) else None


def _fn_upper(s: Any) -> str | None:
    return s.upper() if isinstance(s, str) else None


def _fn_len(x: Any) -> int | None:
    if isinstance(x, str | list | tuple | set | frozenset | Mapping):
        try:
            return len(x)
        except Exception:
            return None
    return None


def _fn_contains(c: Any, x: Any) -> bool:
    return _in(x, c)


def _extreme(args: tuple[Any, ...], pick: Callable[..., Any]) -> Any:
    values = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else args
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(_is_num(v) for v in present) or all(isinstance(v, str) for v in present):
        return pick(present)
    return None


def _fn_min(*args: Any) -> Any:
    return _extreme(args, min)


def _fn_max(*args: Any) -> Any:
    return _extreme(args, max)


def _fn_abs(x: Any) -> Any:
    return abs(x) if _is_num(x) else None


def _fn_round(x: Any, digits: Any = None) -> Any:
    """Round half away from zero (2.5 -> 3); `round(x)` gives a whole number."""
    if not _is_num(x):
        return None
    if digits is None:
        places = 0
    elif _is_num(digits) and isinstance(digits, int):
        places = max(-30, min(30, digits))
    else:
        return None
    if isinstance(x, int) and places >= 0:
        return x
    if isinstance(x, float) and not math.isfinite(x):
        return None if digits is None else x
    quantum = Decimal(1).scaleb(-places)
    try:
        exact = Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_UP, context=_ROUNDING)
    except InvalidOperation:
        return None
    return int(exact) if digits is None or isinstance(x, int) else float(exact)


def _fn_coalesce(*args: Any) -> Any:
    for value in args:
        if value is not None:
            return value
    return None


def _fn_has_tag(scope: Scope, tag: Any) -> bool:
    return _in(tag, _step(scope.get("customer"), "tags"))


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: any number
    needs_scope: bool = False
    boolean: bool = False


FUNCTIONS: Mapping[str, _Function] = {
    "days_since": _Function(_fn_days_since, 1, 1, needs_scope=True),
    "hours_since": _Function(_fn_hours_since, 1, 1, needs_scope=True),
    "days_until": _Function(_fn_days_until, 1, 1, needs_scope=True),
    "lower": _Function(_fn_lower, 1, 1),
    "upper": _Function(_fn_upper, 1, 1),
    "len": _Function(_fn_len, 1, 1),
    "contains": _Function(_fn_contains, 2, 2, boolean=True),
    "min": _Function(_fn_min, 1, None),
    "max": _Function(_fn_max, 1, None),
    "abs": _Function(_fn_abs, 1, 1),
    "round": _Function(_fn_round, 1, 2),
    "coalesce": _Function(_fn_coalesce, 1, None),
    "has_tag": _Function(_fn_has_tag, 1, 1, needs_scope=True, boolean=True),
}
"""Functions of the language by name (implementation and arity)."""

_HELPERS: dict[str, Any] = {
    "_eq": _eq, "_ne": _ne, "_lt": _lt, "_le": _le, "_gt": _gt, "_ge": _ge,
    "_in": _in, "_not_in": _not_in, "_in_text": _in_text, "_truth": _truth,
    "_step": _step, "_add": _add, "_sub": _sub, "_mul": _mul, "_div": _div,
    "_mod": _mod, "_neg": _neg, "_NUMS": _NUMS, "dict": dict, "str": str,
    "Exception": Exception,
    **{f"_fn_{name}": fn.impl for name, fn in FUNCTIONS.items()},
}

# --------------------------------------------------------------------------- tokens

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_MISCASED = {"none": "null", "nil": "null", **{k: k for k in _KEYWORDS}}
_TWO_CHAR = ("==", "!=", "<=", ">=")
_ONE_CHAR = "<>+-*/%()[],."
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num" | "str" | "name" | "op" | "end"
    text: str
    offset: int
    value: Any = None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the condition"
        if self.kind == "str":
            return f"the text {self.text}"
        return f"'{self.text}'"


def _col(offset: int) -> str:
    return f"column {offset + 1}"


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit() and ch.isascii():
            i = _read_number(src, i, tokens)
        elif ch.isidentifier():
            j = i + 1
            while j < n and (src[j].isidentifier() or (src[j].isdigit() and src[j].isascii())):
                j += 1
            tokens.append(_Token("name", src[i:j], i))
            i = j
        elif ch in "'\"":
            i = _read_string(src, i, tokens)
        elif src.startswith(_TWO_CHAR, i):
            tokens.append(_Token("op", src[i : i + 2], i))
            i += 2
        elif ch in _ONE_CHAR:
            tokens.append(_Token("op", ch, i))
            i += 1
        else:
            raise _bad_character(src, i)
    tokens.append(_Token("end", "", n))
    return tokens


def _bad_character(src: str, i: int) -> ExpressionSyntaxError:
    ch = src[i]
    if ch == "=":
        return ExpressionSyntaxError("use '==' to compare, not '='", i, src)
    if ch in "&|":
        word, written = ("and", "&") if ch == "&" else ("or", "|")
        if src[i + 1 : i + 2] == ch:
            written *= 2
        return ExpressionSyntaxError(f"use '{word}' instead of '{written}'", i, src)
    if ch == "!":
        return ExpressionSyntaxError("use 'not' instead of '!'", i, src)
    shown = ch if ch.isprintable() else repr(ch)
    return ExpressionSyntaxError(f"unexpected character '{shown}'", i, src)


def _read_number(src: str, i: int, tokens: list[_Token]) -> int:
    j, n = i, len(src)
    while j < n and src[j].isdigit() and src[j].isascii():
        j += 1
    is_decimal = j + 1 < n and src[j] == "." and src[j + 1].isdigit() and src[j + 1].isascii()
    if is_decimal:
        j += 1
        while j < n and src[j].isdigit() and src[j].isascii():
            j += 1
    if j < n and (src[j].isidentifier() or src[j] == "."):
        k = j
        while k < n and (src[k].isalnum() or src[k] in "._"):
            k += 1
        raise ExpressionSyntaxError(f"'{src[i:k]}' is not a valid number", i, src)
    text = src[i:j]
    if len(text) > 30:
        raise ExpressionSyntaxError(f"the number at {_col(i)} is too long", i, src)
    tokens.append(_Token("num", text, i, float(text) if is_decimal else int(text)))
    return j


def _read_string(src: str, i: int, tokens: list[_Token]) -> int:
    quote, j, n = src[i], i + 1, len(src)
    chars: list[str] = []
    while j < n:
        ch = src[j]
        if ch == quote:
            tokens.append(_Token("str", src[i : j + 1], i, "".join(chars)))
            return j + 1
        if ch == "\\":
            if j + 1 >= n:
                break
            escaped = _ESCAPES.get(src[j + 1])
            if escaped is None:
                raise ExpressionSyntaxError(
                    f"unknown escape '\\{src[j + 1]}' in the text starting at {_col(i)}; "
                    "use '\\\\' for a backslash", j, src)
            chars.append(escaped)
            j += 2
        else:
            chars.append(ch)
            j += 1
    raise ExpressionSyntaxError(f"unclosed string starting at {_col(i)}; add a closing {quote}",
                                i, src)


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # const | path | list | neg | arith | compare | not | and | or | call
    offset: int
    depth: int
    value: Any = None  # const value, operator, or function name
    children: tuple[_Node, ...] = ()
    ref: FieldRef | None = None

    @property
    def boolean(self) -> bool:
        """Whether the node always evaluates to True or False."""
        if self.kind in ("compare", "not", "and", "or"):
            return True
        if self.kind == "call":
            return FUNCTIONS[self.value].boolean
        return self.kind == "const" and self.value.__class__ is bool


_COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=")


class _Parser:
    """Recursive descent over the precedence levels, lowest first."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.tokens = _tokenize(source)
        self.pos = 0
        self.nesting = 0
        self.refs: list[FieldRef] = []
        self.calls: list[tuple[str, int]] = []

    # helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def at(self, kind: str, *texts: str) -> bool:
        t = self.tokens[self.pos]
        return t.kind == kind and (not texts or t.text in texts)

    def advance(self) -> _Token:
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def error(self, message: str, offset: int | None = None) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(message, self.tok.offset if offset is None else offset,
                                     self.src)

    def node(self, kind: str, offset: int, value: Any = None, children: tuple[_Node, ...] = (),
             ref: FieldRef | None = None, extra_depth: int = 0) -> _Node:
        depth = 1 + extra_depth + max((c.depth for c in children), default=0)
        if depth > MAX_DEPTH:
            raise self.error("this condition is too complex; split it into simpler ones",
                             offset)
        return _Node(kind, offset, depth, value, children, ref)

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error("this condition is nested too deeply")

    def expect_close(self, closer: str, opener: _Token, what: str) -> None:
        if self.at("op", closer):
            self.advance()
            return
        found = ("the condition ends" if self.at("end")
                 else f"found {self.tok.describe()}")
        raise self.error(f"expected '{closer}' to close {what} opened at "
                         f"{_col(opener.offset)} but {found}")

    # grammar
    def parse(self) -> _Node:
        if self.at("end"):
            raise self.error("the condition is empty")
        node = self.parse_or()
        if not self.at("end"):
            raise self.trailing_error()
        return node

    def trailing_error(self) -> ExpressionSyntaxError:
        t, prev = self.tok, self.tokens[self.pos - 1]
        if t.kind == "name" and t.text.lower() in _KEYWORDS:
            return self.error(f"write '{t.text.lower()}' instead of '{t.text}'")
        if t.text == ")" and t.kind == "op":
            return self.error("unexpected ')' without a matching '('")
        if t.text == "[" and t.kind == "op":
            return self.error("unexpected '['; square brackets only write lists, "
                              "use '.' to read a field")
        if t.text == "(" and t.kind == "op":
            return self.error(f"unexpected '(' after {prev.describe()}; only function names "
                              "such as lower(...) can be called")
        return self.error(f"unexpected {t.describe()} after {prev.describe()}; "
                          "is 'and', 'or' or an operator missing?")

    def parse_or(self) -> _Node:
        return self.parse_chain("or", self.parse_and)

    def parse_and(self) -> _Node:
        return self.parse_chain("and", self.parse_not)

    def parse_chain(self, word: str, operand: Callable[[], _Node]) -> _Node:
        first = operand()
        items = [first]
        while self.at("name", word):
            self.advance()
            items.append(operand())
        if len(items) == 1:
            return first
        return self.node(word, first.offset, children=tuple(items))

    def parse_not(self) -> _Node:
        if not self.at("name", "not"):
            return self.parse_comparison()
        t = self.advance()
        self.enter()
        operand = self.parse_not()
        self.nesting -= 1
        return self.node("not", t.offset, children=(operand,))

    def comparison_op(self) -> tuple[str, int] | None:
        t = self.tok
        if t.kind == "op" and t.text in _COMPARE_OPS:
            return t.text, t.offset
        if t.kind == "name" and t.text == "in":
            return "in", t.offset
        if t.kind == "name" and t.text == "not":
            nxt = self.tokens[self.pos + 1]
            if nxt.kind == "name" and nxt.text == "in":
                return "not in", t.offset
            raise self.error("expected 'in' after 'not' here (as in 'x not in [1, 2]')")
        return None

    def parse_comparison(self) -> _Node:
        left = self.parse_additive()
        found = self.comparison_op()
        if found is None:
            return left
        op, offset = found
        self.pos += 2 if op == "not in" else 1
        right = self.parse_additive()
        again = self.comparison_op()
        if again is not None:
            raise self.error(f"'{again[0]}' cannot follow another comparison; join comparisons "
                             "with 'and', e.g. 'x > 1 and x < 5'", again[1])
        return self.node("compare", offset, op, (left, right))

    def parse_binary(self, ops: tuple[str, ...], operand: Callable[[], _Node]) -> _Node:
        left = operand()
        while self.at("op", *ops):
            t = self.advance()
            right = operand()
            left = _fold(self.node("arith", t.offset, t.text, (left, right)))
        return left

    def parse_additive(self) -> _Node:
        return self.parse_binary(("+", "-"), self.parse_multiplicative)

    def parse_multiplicative(self) -> _Node:
        return self.parse_binary(("*", "/", "%"), self.parse_unary)

    def parse_unary(self) -> _Node:
        if not self.at("op", "-"):
            return self.parse_primary()
        t = self.advance()
        self.enter()
        operand = self.parse_unary()
        self.nesting -= 1
        return _fold(self.node("neg", t.offset, children=(operand,)))

    def parse_primary(self) -> _Node:
        t = self.tok
        if t.kind in ("num", "str"):
            self.advance()
            return self.node("const", t.offset, t.value)
        if t.kind == "name":
            return self.parse_name()
        if t.kind == "op" and t.text == "(":
            self.advance()
            self.enter()
            inner = self.parse_or()
            self.expect_close(")", t, "'('")
            self.nesting -= 1
            return inner
        if t.kind == "op" and t.text == "[":
            return self.parse_list()
        raise self.missing_value()

    def missing_value(self) -> ExpressionSyntaxError:
        t = self.tok
        prev = self.tokens[self.pos - 1] if self.pos else None
        after = f" after {prev.describe()}" if prev else ""
        if t.kind == "end":
            return self.error(f"expected a value{after} but the condition ends")
        return self.error(f"expected a value{after} but found {t.describe()}")

    def parse_name(self) -> _Node:
        t = self.advance()
        word = t.text
        constants = {"true": True, "false": False, "null": None}
        if word in constants:
            return self.node("const", t.offset, constants[word])
        if word in _KEYWORDS:
            self.pos -= 1
            raise self.missing_value()
        if word.lower() in _MISCASED:
            raise self.error(f"write '{_MISCASED[word.lower()]}' instead of '{word}'",
                             t.offset)
        if self.at("op", "("):
            return self.parse_call(t)
        path: list[str] = []
        while self.at("op", "."):
            self.advance()
            if not self.at("name"):
                found = ("the condition ends" if self.at("end")
                         else f"found {self.tok.describe()}")
                raise self.error(f"expected a field name after '.' but {found}")
            path.append(self.advance().text)
            if self.at("op", "("):
                dotted = ".".join((word, *path))
                raise self.error(f"'{dotted}' is a field, not a function; only names such "
                                 "as lower(...) can be called")
        ref = FieldRef(word, tuple(path), t.offset)
        self.refs.append(ref)
        return self.node("path", t.offset, ref=ref, extra_depth=len(path))

    def parse_call(self, name_tok: _Token) -> _Node:
        name = name_tok.text
        fn = FUNCTIONS.get(name)
        if fn is None:
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.error(f"unknown function '{name}'{hint}", name_tok.offset)
        self.calls.append((name, name_tok.offset))
        opener = self.advance()
        self.enter()
        args = self.parse_items(")", opener, f"the call to '{name}'")
        self.nesting -= 1
        if len(args) < fn.min_args or (fn.max_args is not None and len(args) > fn.max_args):
            raise self.error(f"'{name}' takes {_arity(fn)} but got {len(args)}",
                             name_tok.offset)
        return self.node("call", name_tok.offset, name, tuple(args))

    def parse_list(self) -> _Node:
        opener = self.advance()
        self.enter()
        items = self.parse_items("]", opener, "the list")
        self.nesting -= 1
        return self.node("list", opener.offset, children=tuple(items))

    def parse_items(self, closer: str, opener: _Token, what: str) -> list[_Node]:
        items: list[_Node] = []
        if self.at("op", closer):
            self.advance()
            return items
        while True:
            items.append(self.parse_or())
            if self.at("op", ","):
                self.advance()
                continue
            if self.at("op", closer):
                self.advance()
                return items
            found = ("the condition ends" if self.at("end")
                     else f"found {self.tok.describe()}")
            raise self.error(f"expected ',' or '{closer}' in {what} opened at "
                             f"{_col(opener.offset)} but {found}")


def _arity(fn: _Function) -> str:
    def values(n: int) -> str:
        return f"{n} value" if n == 1 else f"{n} values"

    if fn.max_args is None:
        return f"at least {values(fn.min_args)}"
    if fn.max_args == fn.min_args:
        return values(fn.min_args)
    return f"{fn.min_args} or {values(fn.max_args)}"


_ARITH = {"+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod}
_ARITH_NAMES = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod"}


def _fold(node: _Node) -> _Node:
    """Replace arithmetic on literals by its value (`-5`, `60 * 24`)."""
    if not all(c.kind == "const" for c in node.children):
        return node
    args = [c.value for c in node.children]
    value = _neg(args[0]) if node.kind == "neg" else _ARITH[node.value](*args)
    if value is None or (isinstance(value, int) and abs(value) > 10**30):
        return node
    return _Node("const", node.offset, 1, value)


# --------------------------------------------------------------------------- code generation


class _Emitter:
    """Turns an AST into one Python expression over `s` (the scope)."""

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}
        self.temps = 0

    def const(self, value: Any) -> str:
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def emit(self, node: _Node) -> str:
        return getattr(self, f"emit_{node.kind}")(node)

    def truth(self, node: _Node) -> str:
        code = self.emit(node)
        return code if node.boolean else f"_truth({code})"

    def emit_const(self, node: _Node) -> str:
        if node.value is None or node.value.__class__ is bool:
            return repr(node.value)  # only None / True / False
        return self.const(node.value)

    def emit_path(self, node: _Node) -> str:
        assert node.ref is not None
        code = f"s.get({self.const(node.ref.root)})"
        for name in node.ref.path:
            t, r = self.temp(), self.const(_FieldReader(name))
            code = f"{r}[({t} := {code}).__class__]({t})"
        return code

    def emit_list(self, node: _Node) -> str:
        return "[" + "".join(f"{self.emit(c)}, " for c in node.children) + "]"

    def emit_neg(self, node: _Node) -> str:
        return f"_neg({self.emit(node.children[0])})"

    def emit_arith(self, node: _Node) -> str:
        left, right = (self.emit(c) for c in node.children)
        return f"{_ARITH_NAMES[node.value]}({left}, {right})"

    def emit_not(self, node: _Node) -> str:
        return f"(not {self.truth(node.children[0])})"

    def emit_and(self, node: _Node) -> str:
        return "(" + " and ".join(self.truth(c) for c in node.children) + ")"

    def emit_or(self, node: _Node) -> str:
        return "(" + " or ".join(self.truth(c) for c in node.children) + ")"

    def emit_call(self, node: _Node) -> str:
        args = [self.emit(c) for c in node.children]
        if FUNCTIONS[node.value].needs_scope:
            args.insert(0, "s")
        return f"_fn_{node.value}({', '.join(args)})"

    def emit_compare(self, node: _Node) -> str:
        op = node.value
        left, right = node.children
        if op in ("in", "not in"):
            return self.emit_membership(op, left, right)
        if left.kind == "const" and right.kind != "const":
            left, right = right, left
            op = _MIRROR[op]
        if right.kind == "const":
            return self.emit_compare_const(op, left, right.value)
        a, b = self.temp(), self.temp()
        return (f"(({a} {op} {b}) if (({a} := {self.emit(left)}).__class__ in _NUMS) & "
                f"(({b} := {self.emit(right)}).__class__ in _NUMS) "
                f"else {_COMPARE_NAMES[op]}({a}, {b}))")

    def emit_compare_const(self, op: str, left: _Node, value: Any) -> str:
        code = self.emit(left)
        if value is None or value.__class__ is bool:
            if op in ("==", "!="):
                return f"({code} {'is' if op == '==' else 'is not'} {value!r})"
            return f"{_COMPARE_NAMES[op]}({code}, {value!r})"
        k, t = self.const(value), self.temp()
        slow = f"{_COMPARE_NAMES[op]}({t}, {k})"
        if _is_num(value):
            return f"(({t} {op} {k}) if ({t} := {code}).__class__ in _NUMS else {slow})"
        if isinstance(value, str):
            return f"(({t} {op} {k}) if ({t} := {code}).__class__ is str else {slow})"
        return f"{_COMPARE_NAMES[op]}({code}, {k})"

    def emit_membership(self, op: str, left: _Node, right: _Node) -> str:
        items = right.children
        if (op == "in" and right.kind == "list" and items
                and all(c.kind == "const" and isinstance(c.value, str) for c in items)):
            strings = frozenset(str(c.value) for c in items)
            t = self.temp()
            return (f"(({t} in {self.const(strings)}) if ({t} := {self.emit(left)}).__class__ "
                    f"is str else _in_text({t}, {self.const(strings)}))")
        fn = "_in" if op == "in" else "_not_in"
        return f"{fn}({self.emit(left)}, {self.emit(right)})"


_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_COMPARE_NAMES = {"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}


def _build(root: _Node, source: str) -> tuple[Callable[[Scope], Any], Callable[[Scope], bool]]:
    """Compile `root` into its `evaluate` and `test` functions."""
    emitter = _Emitter()
    body = emitter.emit(root)
    truth = body if root.boolean else f"_truth({body})"
    code = (
        "def _evaluate(s):\n"
        f"    return {body}\n"
        "def _test(s):\n"
        "    try:\n"
        f"        return {truth}\n"
        "    except Exception:\n"
        "        return False\n"
    )
    namespace: dict[str, Any] = {"__builtins__": {}, **_HELPERS, **emitter.constants}
    try:
        exec(compile(code, "<journey expression>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionSyntaxError("this condition is too complex; split it into simpler ones",
                                    0, source) from exc
    return namespace["_evaluate"], namespace["_test"]


def _literal_comparisons(root: _Node) -> tuple[LiteralComparison, ...]:
    """Every comparison of a field with a literal number or text, in the order written."""
    found: list[LiteralComparison] = []
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.children))
        if node.kind != "compare":
            continue
        left, right = node.children
        pairs: list[tuple[_Node, tuple[_Node, ...]]]
        if node.value in ("in", "not in"):  # 'x' in customer.segments; x in ['a', 'b']
            pairs = [(right, (left,))]
            if right.kind == "list":
                pairs.append((left, right.children))
        else:
            pairs = [(left, (right,)), (right, (left,))]
        for field, literals in pairs:
            if field.kind != "path" or field.ref is None:
                continue
            found.extend(LiteralComparison(field.ref, node.value, literal.value, literal.offset)
                         for literal in literals
                         if literal.kind == "const"
                         and isinstance(literal.value, str | int | float)
                         and not isinstance(literal.value, bool))
    return tuple(sorted(found, key=lambda item: item.offset))


# --------------------------------------------------------------------------- public


class CompiledExpression:
    """A parsed, compiled condition; satisfies `journeys_dsl.plan.Expression`.

    `evaluate(scope)` gives the value of the expression (missing paths read as None).
    `test(scope)` gives its truth and never raises (an internal failure reads as false).
    Both are the generated functions themselves, to keep the hot path to a single call.
    """

    __slots__ = ("evaluate", "functions", "literal_comparisons", "refs", "source", "test")

    source: str
    refs: tuple[FieldRef, ...]
    functions: tuple[tuple[str, int], ...]
    evaluate: Callable[[Scope], Any]
    test: Callable[[Scope], bool]
    literal_comparisons: tuple[LiteralComparison, ...]
    """Fields compared with a literal number or text, for `journeys validate` to check
    the text against the field's known values and that the two are of one kind."""

    def __init__(self, source: str, refs: tuple[FieldRef, ...],
                 functions: tuple[tuple[str, int], ...], evaluate: Callable[[Scope], Any],
                 test: Callable[[Scope], bool],
                 literal_comparisons: tuple[LiteralComparison, ...] = ()) -> None:
        self.source = source
        self.refs = refs
        self.functions = functions
        self.evaluate = evaluate
        self.test = test
        self.literal_comparisons = literal_comparisons

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledExpression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(("CompiledExpression", self.source))

    def __reduce__(self) -> tuple[Callable[[str], CompiledExpression], tuple[str]]:
        return parse_expression, (self.source,)


def parse_expression(source: object) -> CompiledExpression:
    """Parse and compile `source`; raises `ExpressionSyntaxError` with a readable message
    (also for a value that is not text, as a library caller may pass)."""
    if not isinstance(source, str):
        raise ExpressionSyntaxError(f"a condition must be text, not {type(source).__name__}",
                                    0, str(source))
    parser = _Parser(source)
    root = parser.parse()
    evaluate, test = _build(root, source)
    return CompiledExpression(source, tuple(parser.refs), tuple(parser.calls), evaluate, test,
                              _literal_comparisons(root))

