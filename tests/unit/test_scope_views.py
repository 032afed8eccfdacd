"""Paths read through the scope's views, and the views `build_scope` shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from engine.core.aggregates import Aggregates
from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.runtime import Effects, JourneyRuntime
from engine.core.scope import (
    _CUSTOMER_FIELDS,
    CustomerView,
    ScopeContext,
    build_scope,
)
from engine.core.state import CustomerState, Enrollment, Voucher
from journeys_dsl.expressions import parse_expression, register_view
from journeys_dsl.segments import load_segments

DAY = 86_400_000
T0 = 1_741_000_000_000


class Plain:
    """Mapping-like by its `get` alone, registered as a view only on request."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)


class Getter(Plain):
    """A view whose `field_getter` answers like its `get`."""

    @classmethod
    def field_getter(cls, name: str) -> Callable[[Getter], Any]:
        return lambda view: view.get(name)


def test_paths_read_dicts_views_and_other_getters_alike() -> None:
    register_view(Getter)
    expression = parse_expression("a.b.c")
    for inner in ({"c": 1}, Plain(c=1), Getter(c=1)):
        for outer in ({"b": inner}, Plain(b=inner), Getter(b=inner)):
            assert expression.evaluate({"a": outer}) == 1
    assert expression.evaluate({"a": {"b": None}}) is None
    assert expression.evaluate({"a": {"b": 3}}) is None
    assert expression.evaluate({"a": Getter(b=Getter())}) is None


def test_a_class_registered_after_a_path_read_it_still_reads() -> None:
    class Late(Plain):
        pass

    expression = parse_expression("x.y == 2")
    assert expression.test({"x": Late(y=2)})
    register_view(Late)
    assert expression.test({"x": Late(y=2)})
    assert not expression.test({"x": Late(y=3)})


def guest() -> tuple[CustomerState, ScopeContext]:
    runtime = JourneyRuntime(Catalog([]), customer_model=load_segments())
    state, aggregates, effects = CustomerState("ann"), Aggregates(), Effects()
    for count, day in enumerate((0, 2, 5, 9)):
        event = validate_event({"event_id": f"ann-{count}", "customer_id": "ann",
                                "type": "visit", "ts": T0 + day * DAY, "venue_id": "v1",
                                "amount": 20.0 + count,
                                "items": [{"name": "steak", "category": "meat"}]})
        runtime.apply_event(state, event, runtime.context(aggregates), effects)
    return state, runtime.context(aggregates)


def test_customer_field_getters_answer_like_get() -> None:
    state, context = guest()
    names = [*_CUSTOMER_FIELDS, "unknown", "get"]
    for name in names:
        expected = CustomerView(state, T0 + 10 * DAY, context).get(name)
        got = CustomerView.field_getter(name)(CustomerView(state, T0 + 10 * DAY, context))
        if name == "segments":
            assert list(got) == list(expected)
        else:
            assert got == expected, name
    assert parse_expression("customer.favourite_category").evaluate(
        build_scope(state, T0 + 10 * DAY, context)) == "meat"


def test_scopes_outside_a_journey_and_venues_read_as_before() -> None:
    state, context = guest()
    scope = build_scope(state, T0 + 10 * DAY, context, venue_id="v1")
    assert scope["offer"].get("dessert") == {"issued": False, "redeemed": False,
                                             "expired": False}
    assert scope["journey"].get("days_in") is None and list(scope["journey"]) == [
        "entered_at", "days_in", "step", "holdout", "variant", "variants"]
    assert scope["venue"].get("visit_count") == 4 and scope["venue"].get("venue_id") == "v1"
    assert build_scope(state, T0, context, venue_id="v2")["venue"].get("visit_count") is None
    assert build_scope(state, T0, context)["venue"].get("venue_id") is None
    context.aggregates = Aggregates()
    assert build_scope(state, T0, context, venue_id="v1")["venue"].get("visit_count") is None

    enrollment = Enrollment(journey="j", version=1, seq=1, entered_at=T0, holdout=False,
                            step=0, arrived_at=T0)
    state.vouchers["D-1"] = Voucher("dessert", "j@1", T0, T0 + 5 * DAY)
    enrollment.vouchers["dessert"] = "D-1"
    inside = build_scope(state, T0 + DAY, context, enrollment=enrollment, step_id="s")
    assert parse_expression("offer.dessert.issued and journey.days_in == 1").test(inside)
    assert parse_expression("journey.step").evaluate(inside) == "s"
