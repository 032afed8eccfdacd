"""Tests of the journey condition language."""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeys_dsl.expressions import (
    FUNCTIONS,
    CompiledExpression,
    ExpressionSyntaxError,
    FieldRef,
    parse_expression,
)
from journeys_dsl.plan import Expression

DAY_MS = 86_400_000


def ev(source: str, scope: Mapping[str, Any] | None = None) -> Any:
    return parse_expression(source).evaluate({} if scope is None else scope)


def syntax_error(source: str) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression(source)
    return info.value


class LazyScope(Mapping[str, Any]):
    """A scope that computes fields on demand and refuses to be iterated."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.reads.append(key)
        value = self.fields[key]
        return LazyScope(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("scopes must not be iterated")

    def __len__(self) -> int:
        raise AssertionError("scopes must not be sized")


class GetOnly:
    """Not a Mapping, but has a callable `.get`."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def get(self, name: str) -> Any:
        return self.fields.get(name)


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("42", 42),
        ("4.5", 4.5),
        ('"double"', "double"),
        ("'single'", "single"),
        (r"'a\'b'", "a'b"),
        (r'"a\"b"', 'a"b'),
        (r"'line\nnext\ttab\\'", "line\nnext\ttab\\"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 2, 'x']", [1, 2, "x"]),
        ("[]", []),
        ("[[1], [true, null]]", [[1], [True, None]]),
        ("-3", -3),
        ("- 2.5", -2.5),
    ],
)
def test_literals(source: str, expected: Any) -> None:
    value = ev(source)
    assert value == expected
    assert type(value) is type(expected)


def test_integer_and_decimal_types() -> None:
    assert type(ev("10")) is int
    assert type(ev("10.0")) is float


def test_list_evaluates_elements() -> None:
    assert ev("[event.a, 1 + 1]", {"event": {"a": "x"}}) == ["x", 2]


# --------------------------------------------------------------------------- field paths


def test_field_paths_read_nested_values() -> None:
    scope = {
        "event": {"amount": 12.5},
        "offer": {"dessert": {"redeemed": True}},
        "customer": {"visit_count": 3},
    }
    assert ev("event.amount", scope) == 12.5
    assert ev("offer.dessert.redeemed", scope) is True
    assert ev("customer.visit_count", scope) == 3


def test_missing_paths_read_as_null() -> None:
    assert ev("event.amount", {}) is None
    assert ev("event.amount", {"event": None}) is None
    assert ev("offer.dessert.redeemed", {"offer": {}}) is None
    assert ev("offer.dessert.redeemed", {"offer": {"dessert": 5}}) is None
    assert ev("event.name.first", {"event": {"name": "Ann"}}) is None
    assert ev("event.items.x", {"event": {"items": [1, 2]}}) is None


def test_bare_identifier_is_a_root_only_path() -> None:
    expr = parse_expression("now")
    assert expr.refs == (FieldRef("now", (), 0),)
    assert expr.evaluate({"now": 5}) == 5


def test_keywords_are_allowed_as_field_names_after_a_dot() -> None:
    assert ev("offer.in.not", {"offer": {"in": {"not": 1}}}) == 1


def test_lazy_mapping_scope_is_read_with_get_only() -> None:
    scope = LazyScope({"customer": {"visit_count": 1, "tags": ["vip"]}, "event": {"stars": 5}})
    expr = parse_expression("event.stars == 5 and customer.visit_count == 1 and has_tag('vip')")
    assert expr.evaluate(scope) is True
    assert expr.test(scope) is True
    assert "customer" in scope.reads and "event" in scope.reads


def test_object_with_get_method_is_read() -> None:
    scope = {"venue": GetOnly(avg_amount=20.0)}
    assert ev("venue.avg_amount", scope) == 20.0
    assert ev("venue.nothing", scope) is None
    assert ev("x.a.b", {"x": GetOnly(a=GetOnly(b=3))}) == 3


def test_attribute_names_are_not_python_attributes() -> None:
    assert ev("event.__class__", {"event": {}}) is None
    assert ev("event.upper", {"event": "text"}) is None


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("12 / 4 / 3", 1.0),
        ("7 % 4", 3),
        ("2 * 3 % 4", 2),
        ("-2 * 3", -6),
        ("- (2 + 3)", -5),
        ("1 + 2 == 3", True),
        ("not 1 == 2", True),
        ("not true and false", False),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("not not true", True),
        ("false or not false", True),
        ("1 + 1 in [2, 3]", True),
        ("1 < 2 and 2 < 3", True),
    ],
)
def test_precedence(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("3 == 3", True),
        ("3 == 3.0", True),
        ("3 != 4", True),
        ("3 != 3", False),
        ("2 < 3", True),
        ("3 < 3", False),
        ("3 <= 3", True),
        ("4 <= 3", False),
        ("4 > 3", True),
        ("3 > 3", False),
        ("3 >= 3", True),
        ("2 >= 3", False),
        ("'a' < 'b'", True),
        ("'b' >= 'a'", True),
        ("'abc' == 'abc'", True),
        ("'a' in 'cat'", True),
        ("'z' in 'cat'", False),
        ("'z' not in 'cat'", True),
        ("2 in [1, 2]", True),
        ("2.0 in [1, 2]", True),
        ("5 not in [1, 2]", True),
        ("2 not in [1, 2]", False),
        ("'b' in ['a', 'b']", True),
        ("'c' in ['a', 'b']", False),
        ("'c' not in ['a', 'b']", True),
        ("[1, 2] == [1, 2]", True),
        ("[1, 2] != [2, 1]", True),
    ],
)
def test_comparisons(source: str, expected: bool) -> None:
    assert ev(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("1.5 + 1", 2.5),
        ("'ab' + 'cd'", "abcd"),
        ("[1] + [2]", [1, 2]),
        ("5 - 7", -2),
        ("3 * 4", 12),
        ("7 / 2", 3.5),
        ("-7 % 3", 2),
        ("x * 2", 10),
        ("x / y", 2.5),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    assert ev(source, {"x": 5, "y": 2}) == expected


def test_comparisons_between_fields_on_both_sides() -> None:
    scope = {"customer": {"last_visit_amount": 30.0}, "venue": {"avg_amount": 20}}
    assert ev("customer.last_visit_amount > venue.avg_amount", scope) is True
    assert ev("venue.avg_amount > customer.last_visit_amount", scope) is False
    assert ev("venue.avg_amount <= customer.last_visit_amount", scope) is True
    assert ev("5 < customer.last_visit_amount", scope) is True
    assert ev("50 <= customer.last_visit_amount", scope) is False


def test_and_or_short_circuit_and_return_booleans() -> None:
    assert ev("1 and 'x'") is True
    assert ev("0 or ''") is False
    assert ev("null or [1]") is True
    assert ev("[] and x.y") is False
    # the right side is not read when the left decides
    scope = LazyScope({"a": 0})
    assert parse_expression("a and b").evaluate(scope) is False
    assert scope.reads == ["a"]


def test_not_uses_truthiness() -> None:
    assert ev("not null") is True
    assert ev("not 0") is True
    assert ev("not ''") is True
    assert ev("not 'x'") is False
    assert ev("not []") is True
    assert ev("not x", {"x": [1]}) is False


# --------------------------------------------------------------------------- null and types


@pytest.mark.parametrize(
    "source",
    [
        "x < 1", "x <= 1", "x > 1", "x >= 1", "1 < x", "1 >= x", "x < y", "x >= x",
        "1 in x", "'a' in x", "x not in null", "1 not in x",
        "x == 1", "1 == x", "x == 'a'", "x == false", "x == []",
    ],
)
def test_comparisons_with_null_are_false(source: str) -> None:
    assert ev(source) is False


def test_equality_with_null_compares_normally() -> None:
    assert ev("x == null") is True
    assert ev("null == x") is True
    assert ev("x != null") is False
    assert ev("x == null", {"x": 0}) is False
    assert ev("x != null", {"x": 0}) is True
    assert ev("x == y") is True
    assert ev("null in [1, null]") is True
    assert ev("x not in [1, 2]") is True


@pytest.mark.parametrize("source", ["x + 1", "1 - x", "x * 2", "2 / x", "x % 2", "-x", "x + x"])
def test_arithmetic_with_null_is_null(source: str) -> None:
    assert ev(source) is None


@pytest.mark.parametrize("source", ["1 / 0", "1 % 0", "x / 0.0", "x % zero"])
def test_division_by_zero_is_null(source: str) -> None:
    assert ev(source, {"x": 3, "zero": 0}) is None


@pytest.mark.parametrize(
    "source",
    [
        "'5' < 6", "'5' > 6", "6 >= '5'", "'5' == 5", "[1] < [2]", "true > false",
        "true < 2", "'a' in 1", "1 in 'abc'", "1 not in 'abc'", "1 not in 5", "'a' in 5",
        "x < 1", "x == 1",
    ],
)
def test_type_mismatches_are_false(source: str) -> None:
    assert ev(source, {"x": {"a": 1}}) is False


@pytest.mark.parametrize(
    "source", ["'a' + 1", "'a' * 3", "[1] * 2", "true + 1", "-'a'", "-true", "'a' - 'a'"]
)
def test_arithmetic_type_mismatches_are_null(source: str) -> None:
    assert ev(source) is None


def test_booleans_are_not_numbers() -> None:
    assert ev("true == 1") is False
    assert ev("false == 0") is False
    assert ev("1 == true") is False
    assert ev("x == 1", {"x": True}) is False
    assert ev("x == y", {"x": True, "y": 1}) is False
    assert ev("x == true", {"x": 1}) is False
    assert ev("x == true", {"x": True}) is True
    assert ev("1 in [true]") is False
    assert ev("[1] == [true]") is False
    assert ev("x in [1, 2]", {"x": True}) is False
    assert ev("x > 0", {"x": True}) is False


def test_membership_in_mappings_checks_keys() -> None:
    scope = {"customer": {"consents": {"email": True, "sms": None}}}
    assert ev("'email' in customer.consents", scope) is True
    assert ev("'push' in customer.consents", scope) is False
    assert ev("1 in customer.consents", scope) is False
    assert ev("'email' in c", {"c": GetOnly(email=1)}) is True


def test_nan_and_infinity_do_not_crash() -> None:
    scope = {"x": math.nan, "y": math.inf}
    assert ev("x == x", scope) is False
    assert ev("x < 1", scope) is False
    assert ev("y > 1", scope) is True
    assert ev("round(y)", scope) is None
    assert ev("round(x, 2)", scope) is None or math.isnan(ev("round(x, 2)", scope))


def test_huge_numbers_give_null_instead_of_raising() -> None:
    assert ev("x / 3", {"x": 10**400}) is None
    assert ev("x + 0.5", {"x": 10**400}) is None


# --------------------------------------------------------------------------- functions


def test_time_functions() -> None:
    now = 100 * DAY_MS
    scope = {"now": now, "customer": {"last_visit_at": now - 3 * DAY_MS}}
    assert ev("days_since(customer.last_visit_at)", scope) == 3.0
    assert isinstance(ev("days_since(customer.last_visit_at)", scope), float)
    assert ev("hours_since(customer.last_visit_at)", scope) == 72.0
    assert ev("days_until(now + 86400000)", scope) == 1.0
    assert ev("days_since(now - 43200000)", scope) == 0.5
    assert ev("days_since(customer.missing)", scope) is None
    assert ev("days_since(1000)", {}) is None
    assert ev("days_since('yesterday')", scope) is None
    assert ev("days_since(customer.last_visit_at) > 2", scope) is True


def test_text_functions() -> None:
    assert ev("lower('MiXeD')") == "mixed"
    assert ev("upper('MiXeD')") == "MIXED"
    assert ev("lower(null)") is None
    assert ev("upper(3)") is None
    assert ev("lower(x) == 'vip'", {"x": "VIP"}) is True


def test_len() -> None:
    assert ev("len('abc')") == 3
    assert ev("len([1, 2])") == 2
    assert ev("len(x)", {"x": {"a": 1}}) == 1
    assert ev("len(null)") is None
    assert ev("len(5)") is None
    assert ev("len(true)") is None


def test_contains() -> None:
    scope = {"event": {"items": ["burger", "fries"], "text": "great burger"}}
    assert ev("contains(event.items, 'fries')", scope) is True
    assert ev("contains(event.items, 'salad')", scope) is False
    assert ev("contains(event.text, 'burger')", scope) is True
    assert ev("contains(null, 'x')", scope) is False
    assert ev("contains(event.items, 1)", scope) is False


def test_min_max() -> None:
    assert ev("min(3, 1, 2)") == 1
    assert ev("max(3, 1, 2)") == 3
    assert ev("max(1.5, 2)") == 2
    assert ev("min(null, 4)") == 4
    assert ev("max(null, null)") is None
    assert ev("min([5, 2, 9])") == 2
    assert ev("max('a', 'b')") == "b"
    assert ev("max(1, 'a')") is None
    assert ev("min(5)") == 5
    assert ev("min(true, 1)") is None


def test_abs_and_round() -> None:
    assert ev("abs(-3)") == 3
    assert ev("abs(2.5)") == 2.5
    assert ev("abs('x')") is None
    assert ev("round(2.5)") == 3
    assert ev("round(-2.5)") == -3
    assert ev("round(2.4)") == 2
    assert type(ev("round(2.6)")) is int
    assert ev("round(2.345, 2)") == 2.35
    assert ev("round(7)") == 7
    assert ev("round(1234, -2)") == 1200
    assert ev("round(null)") is None
    assert ev("round(1.5, 'x')") is None
    assert ev("round(1.5, true)") is None


def test_coalesce() -> None:
    assert ev("coalesce(null, x, 3)", {"x": None}) == 3
    assert ev("coalesce(x, 3)", {"x": 0}) == 0
    assert ev("coalesce(x.a, 'fallback')") == "fallback"
    assert ev("coalesce(null)") is None


def test_has_tag() -> None:
    scope = {"customer": {"tags": ["vip", "regular"]}}
    assert ev("has_tag('vip')", scope) is True
    assert ev("has_tag('new')", scope) is False
    assert ev("has_tag('vip')", {}) is False
    assert ev("has_tag('vip')", {"customer": {"tags": None}}) is False
    assert ev("not has_tag('new')", scope) is True


def test_function_names_are_all_known() -> None:
    assert set(FUNCTIONS) == {
        "days_since", "hours_since", "days_until", "lower", "upper", "len", "contains",
        "min", "max", "abs", "round", "coalesce", "has_tag",
    }


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("days_since()", "'days_since' takes 1 value but got 0"),
        ("days_since(1, 2)", "'days_since' takes 1 value but got 2"),
        ("hours_since()", "takes 1 value"),
        ("days_until(1, 2)", "takes 1 value"),
        ("lower()", "'lower' takes 1 value"),
        ("upper('a', 'b')", "'upper' takes 1 value"),
        ("len()", "'len' takes 1 value"),
        ("contains([1])", "'contains' takes 2 values but got 1"),
        ("contains([1], 1, 2)", "'contains' takes 2 values but got 3"),
        ("min()", "'min' takes at least 1 value but got 0"),
        ("max()", "'max' takes at least 1 value"),
        ("abs(1, 2)", "'abs' takes 1 value"),
        ("round()", "'round' takes 1 or 2 values but got 0"),
        ("round(1, 2, 3)", "'round' takes 1 or 2 values but got 3"),
        ("coalesce()", "'coalesce' takes at least 1 value"),
        ("has_tag()", "'has_tag' takes 1 value"),
    ],
)
def test_wrong_arity_is_a_syntax_error_at_the_call(source: str, fragment: str) -> None:
    err = syntax_error("x == 1 and " + source)
    assert fragment in err.message
    assert err.offset == len("x == 1 and ")


def test_unknown_function_suggests_a_close_name() -> None:
    err = syntax_error("dayz_since(customer.last_visit_at) > 3")
    assert err.message == "unknown function 'dayz_since'; did you mean 'days_since'?"
    assert err.offset == 0
    err = syntax_error("x and frobnicate(1)")
    assert err.message == "unknown function 'frobnicate'"
    assert err.offset == 6


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "__import__('os').system('ls')",
        "eval('1')",
        "open('/etc/passwd')",
        "x.__class__()",
        "event.get('x')",
        "x[0]",
        "lower('a').upper()",
        "(1).real",
        "getattr(x, 'y')",
        "lambda: 1",
        "x if y else z",
        "[c for c in x]",
        "f'{x}'",
        "x; y",
        "x ** 2",
    ],
)
def test_python_syntax_is_rejected(source: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        parse_expression(source)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("source", "message", "offset"),
    [
        ("", "the condition is empty", 0),
        ("   ", "the condition is empty", 3),
        ("x > 1 and", "expected a value after 'and' but the condition ends", 9),
        ("x > 1 or", "expected a value after 'or' but the condition ends", 8),
        ("x ==", "expected a value after '==' but the condition ends", 4),
        ("x == )", "expected a value after '==' but found ')'", 5),
        ("x == 1)", "unexpected ')' without a matching '('", 6),
        ("(x == 1", "expected ')' to close '(' opened at column 1 but the condition ends", 7),
        ("x and (y or z", "expected ')' to close '(' opened at column 7", 13),
        ("name == 'Bob", "unclosed string starting at column 9", 8),
        ("a && b", "use 'and' instead of '&&'", 2),
        ("a || b", "use 'or' instead of '||'", 2),
        ("!a", "use 'not' instead of '!'", 0),
        ("a & b", "use 'and'", 2),
        ("a = 1", "use '==' to compare", 2),
        ("a < b < c", "'<' cannot follow another comparison", 6),
        ("a == b != c", "'!=' cannot follow another comparison", 7),
        ("a in b in c", "'in' cannot follow another comparison", 7),
        ("x y", "unexpected 'y' after 'x'", 2),
        ("x not y", "expected 'in' after 'not'", 2),
        ("x #", "unexpected character '#'", 2),
        ("x.", "expected a field name after '.' but the condition ends", 2),
        ("x.1", "expected a field name after '.' but found '1'", 2),
        ("[1, 2", "expected ',' or ']' in the list opened at column 1", 5),
        ("lower('a'", "expected ',' or ')' in the call to 'lower' opened at column 6", 9),
        ("lower('a',)", "expected a value after ','", 10),
        ("12abc", "'12abc' is not a valid number", 0),
        ("1.2.3", "'1.2.3' is not a valid number", 0),
        ("True", "write 'true' instead of 'True'", 0),
        ("x == None", "write 'null' instead of 'None'", 5),
        ("x AND y", "write 'and' instead of 'AND'", 2),
        (r"'a\q'", "unknown escape '\\q'", 2),
        ("x.y(1)", "'x.y' is a field, not a function", 3),
        ("x[0]", "unexpected '['", 1),
        ("(x)(1)", "unexpected '('", 3),
        ("x == and", "expected a value after '==' but found 'and'", 5),
    ],
)
def test_error_messages_and_offsets(source: str, message: str, offset: int) -> None:
    err = syntax_error(source)
    assert message in err.message
    assert err.offset == offset
    assert err.column == offset + 1
    assert err.source == source
    assert str(err) == err.message
    assert isinstance(err, ValueError)


def test_nesting_limit_is_a_syntax_error() -> None:
    assert ev("(" * 20 + "1" + ")" * 20) == 1
    err = syntax_error("(" * 500 + "1" + ")" * 500)
    assert "nested too deeply" in err.message
    assert "too complex" in syntax_error("x" + " + x" * 300).message
    assert "too complex" in syntax_error("x" + ".a" * 300).message
    assert "nested too deeply" in syntax_error("not " * 300 + "x").message


def test_long_flat_conditions_compile() -> None:
    source = " or ".join(f"event.a{i} == {i}" for i in range(500))
    assert parse_expression(source).test({"event": {"a499": 499}}) is True


def test_non_text_source_is_a_syntax_error() -> None:
    with pytest.raises(ExpressionSyntaxError):
        parse_expression(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metadata


def test_refs_in_source_order_including_arguments_and_lists() -> None:
    source = (
        "days_since(customer.last_visit_at) > 3 and event.venue_id in "
        "[venue.venue_id, customer.last_venue_id] or offer.dessert.redeemed"
    )
    expr = parse_expression(source)
    assert [(r.root, r.path) for r in expr.refs] == [
        ("customer", ("last_visit_at",)),
        ("event", ("venue_id",)),
        ("venue", ("venue_id",)),
        ("customer", ("last_venue_id",)),
        ("offer", ("dessert", "redeemed")),
    ]
    for ref in expr.refs:
        assert source[ref.offset :].startswith(ref.root + ".")
    assert expr.refs[-1].dotted == "offer.dessert.redeemed"


def test_refs_repeat_for_repeated_paths() -> None:
    expr = parse_expression("x.a > 1 and x.a < 5")
    assert expr.refs == (FieldRef("x", ("a",), 0), FieldRef("x", ("a",), 12))


def test_functions_are_listed_with_offsets() -> None:
    expr = parse_expression("lower(x) == 'a' and max(len(y), 2) > 1")
    assert expr.functions == (("lower", 0), ("max", 20), ("len", 24))


def test_literals_have_no_refs() -> None:
    expr = parse_expression("'event.amount' == \"customer.x\"")
    assert expr.refs == ()
    assert expr.functions == ()


def test_source_is_kept_and_expression_protocol_is_satisfied() -> None:
    source = "  event.stars  ==  5 "
    expr = parse_expression(source)
    assert expr.source == source
    as_protocol: Expression = expr
    assert as_protocol.test({"event": {"stars": 5}}) is True
    assert isinstance(expr, CompiledExpression)


def test_equality_hash_repr_and_pickle() -> None:
    a, b = parse_expression("x == 1"), parse_expression("x == 1")
    assert a == b and hash(a) == hash(b)
    assert a != parse_expression("x == 2")
    assert "x == 1" in repr(a)
    restored = pickle.loads(pickle.dumps(a))
    assert restored == a
    assert restored.test({"x": 1}) is True


# --------------------------------------------------------------------------- test()


def test_test_converts_to_boolean() -> None:
    assert parse_expression("x").test({"x": [1]}) is True
    assert parse_expression("x").test({"x": []}) is False
    assert parse_expression("x").test({}) is False
    assert parse_expression("x + 1").test({"x": 1}) is True


def test_test_never_raises_on_broken_scopes() -> None:
    class Broken(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("backend down")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError

        def __len__(self) -> int:
            raise RuntimeError

        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("backend down")

    expr = parse_expression("event.stars == 5")
    assert expr.test(Broken()) is False
    assert expr.test({"event": Broken()}) is False
    assert parse_expression("x").test({"x": Broken()}) is False


def test_benchmark_condition() -> None:
    expr = parse_expression(
        "event.stars == 5 and customer.visit_count == 1 "
        "and customer.last_visit_amount > venue.avg_amount"
    )
    scope = {
        "event": {"stars": 5},
        "customer": {"visit_count": 1, "last_visit_amount": 30.0},
        "venue": {"avg_amount": 20},
    }
    assert expr.test(scope) is True
    scope["venue"] = {"avg_amount": 40}
    assert expr.test(scope) is False
    scope["venue"] = {"avg_amount": None}
    assert expr.test(scope) is False
    assert expr.test({"event": {"stars": 5.0}, "customer": {"visit_count": True}}) is False


# --------------------------------------------------------------------------- properties

_ALPHABET = st.sampled_from(
    [
        *"abcxyz_.,()[]'\"\\ 0123456789+-*/%<>=!&|#",
        *("and", "or", "not", "in", "true", "null", "len(", "min(", "event."),
    ]
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=4),
    max_leaves=12,
)

_SAMPLES = [
    "event.stars == 5 and customer.visit_count == 1",
    "customer.last_visit_amount > venue.avg_amount",
    "x + y * z - x / y % z",
    "-x < y or not z",
    "x in y and x not in z",
    "days_since(x) > hours_since(y) - days_until(z)",
    "lower(x) == upper(y) and len(z) >= 1",
    "contains(x, y) or contains(z, 'a')",
    "min(x, y, z) < max(x, [1, 2], z)",
    "abs(x) + round(y) + round(z, x) > 0",
    "coalesce(x, y, z) and has_tag(x)",
    "x.a.b == y.c and z.d in ['a', 'b'] and x >= 'm'",
    "[x, y] == [y, x] or x == null or -x.a",
    "x",
]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=40))
def test_random_text_only_raises_syntax_errors(source: str) -> None:
    try:
        parse_expression(source)
    except ExpressionSyntaxError as err:
        assert 0 <= err.offset <= len(source)
        assert err.message


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=25).map(" ".join))
def test_random_token_soup_only_raises_syntax_errors(source: str) -> None:
    try:
        expr = parse_expression(source)
    except ExpressionSyntaxError as err:
        assert 0 <= err.offset <= len(source)
        return
    assert isinstance(expr.test({"x": 1, "event": {"a": 2}}), bool)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(_SAMPLES),
    st.dictionaries(st.sampled_from(["x", "y", "z", "now", "event", "customer", "venue"]),
                    _json, max_size=7),
)
def test_test_never_raises_on_random_scopes(source: str, scope: dict[str, Any]) -> None:
    expr = parse_expression(source)
    assert isinstance(expr.test(scope), bool)
    expr.evaluate(scope)
