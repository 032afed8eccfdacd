"""Event validation, profile aggregates, state round trips and the P(alive) score."""

from __future__ import annotations

import contextlib
import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.decoding import decode_line
from engine.core.events import EventError, parse_timestamp, validate_event
from engine.core.profile import Profile, daypart_of
from engine.core.state import CustomerState, Enrollment, Voucher
from engine.core.timeutil import DAY_MS, next_yearly
from engine.scoring.model import BgNbdParams, crossing_age, p_alive, p_alive_crossing_ms

T0 = 1_741_000_000_000


def visit(ts: int, amount: float = 30.0, items: list | None = None, **extra: object) -> dict:
    return {"event_id": f"e{ts}", "customer_id": "c1", "type": "visit", "ts": ts,
            "venue_id": "v1", "amount": amount, "items": items or [], **extra}


def test_iso_timestamps_keep_their_offset() -> None:
    ts, offset = parse_timestamp("2025-03-03T12:30:00+01:00")
    assert ts == 1741001400000
    assert offset == 3600
    assert parse_timestamp(1741001400000) == (1741001400000, None)
    assert parse_timestamp("2025-03-03T11:30:00Z")[0] == 1741001400000


@pytest.mark.parametrize(("raw", "reason"), [
    ({"customer_id": "c", "type": "visit", "ts": T0}, "missing or empty 'event_id'"),
    ({"event_id": "e", "type": "visit", "ts": T0}, "missing or empty 'customer_id'"),
    ({"event_id": "e", "customer_id": "c", "ts": T0}, "missing or non-string 'type'"),
    ({"event_id": "e", "customer_id": "c", "type": "visit"}, "missing 'ts'"),
    ({"event_id": "e", "customer_id": "c", "type": "visit", "ts": "yesterday"},
     "'ts' is not ISO-8601"),
    ({"event_id": "e", "customer_id": "c", "type": "visit", "ts": "2025-03-03T12:00:00"},
     "'ts' has no UTC offset"),
    ({"event_id": "e", "customer_id": "c", "type": "visit", "ts": 12}, "outside 2000-2100"),
    ({"event_id": "e", "customer_id": "c", "type": "visit", "ts": T0, "venue_id": "v"},
     "missing 'amount'"),
    ({"event_id": "e", "customer_id": "c", "type": "visit", "ts": T0, "venue_id": "v",
      "amount": -1}, "'amount' must be at least 0"),
    ({"event_id": "e", "customer_id": "c", "type": "visit", "ts": T0, "venue_id": "v",
      "amount": 1, "items": [{"price": 2}]}, "'items[0]' must be an object"),
    ({"event_id": "e", "customer_id": "c", "type": "rating", "ts": T0, "stars": True},
     "'stars' must be a whole number"),
    ({"event_id": "e", "customer_id": "c", "type": "profile", "ts": T0,
      "birthday": "17/05/1990"}, "'birthday' must look like"),
    ({"event_id": "e", "customer_id": "c", "type": "profile", "ts": T0,
      "timezone": "Mars/Olympus"}, "'timezone' is not a known IANA zone"),
    ({"event_id": "e", "customer_id": "c", "type": "message", "ts": T0, "status": "read"},
     "'status' must be one of"),
    ({"event_id": "e", "customer_id": "c", "type": "points", "ts": T0, "kind": "earned",
      "amount": 1.5}, "'amount' must be a whole number"),
])
def test_invalid_events_are_refused_with_a_reason(raw: dict, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        validate_event(raw)
    assert reason in caught.value.reason


def test_decode_refuses_non_objects_and_bad_bytes() -> None:
    with pytest.raises(EventError, match="must be a JSON object"):
        decode_line(b"[1]")
    with pytest.raises(EventError, match="not valid JSON"):
        decode_line(b"\xff\xfe")


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=6),
    max_leaves=20,
))
def test_any_json_value_is_either_an_event_or_an_event_error(value: object) -> None:
    try:
        line = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return
    with contextlib.suppress(EventError):
        decode_line(line)


@given(st.dictionaries(
    st.sampled_from(["event_id", "customer_id", "type", "ts", "amount", "venue_id", "items",
                     "stars", "birthday", "status", "kind", "consents", "timezone"]),
    st.none() | st.booleans() | st.integers(-10, 2_000_000_000_000) | st.text(max_size=12)
    | st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), max_size=3),
    max_size=13,
).map(lambda d: {**d, "type": d.get("type") or "visit"}))
def test_event_shaped_input_never_raises_anything_but_event_error(raw: dict) -> None:
    for kind in ("visit", "rating", "profile", "message", "points", "voucher_redeemed"):
        with contextlib.suppress(EventError):
            validate_event({**raw, "type": kind})


def test_profile_aggregates_visits() -> None:
    profile = Profile()
    items = [{"name": "steak", "category": "meat", "price": 30},
             {"name": "tiramisu", "category": "desserts", "price": 8}]
    for day in range(5):
        profile.apply(validate_event(visit(T0 + day * 10 * DAY_MS, 38.0, items)))
    profile.apply(validate_event({**visit(T0 - DAY_MS, 10.0), "event_id": "late"}))
    assert profile.visit_count == 6
    assert profile.first_visit_at == T0 - DAY_MS
    assert profile.last_visit_at == T0 + 40 * DAY_MS
    assert profile.last_visit_amount == 38.0  # a late event does not become the last visit
    assert profile.total_spend == 200.0
    assert profile.item_counts == {"steak": 5, "tiramisu": 5}
    assert profile.visits_within(T0 + 40 * DAY_MS, 30) == 3
    assert profile.visits_within(T0 + 40 * DAY_MS, 365) == 6


def test_profile_events_update_contact_data_and_consents() -> None:
    profile = Profile()
    profile.apply(validate_event({"event_id": "p", "customer_id": "c", "type": "profile",
                                  "ts": T0, "name": "Ann Lee", "birthday": "1990-05-17",
                                  "consents": {"email": True}}))
    profile.apply(validate_event({"event_id": "q", "customer_id": "c", "type": "profile",
                                  "ts": T0, "consents": {"sms": False}}))
    assert profile.birthday == "05-17"
    assert profile.consents == {"email": True, "sms": False}


def test_dayparts_cover_every_hour() -> None:
    assert [daypart_of(h) for h in (7, 12, 16, 20, 23, 2)] == [
        "breakfast", "lunch", "afternoon", "dinner", "late", "late"]


def test_state_round_trips_through_bytes() -> None:
    state = CustomerState("c1")
    state.profile.apply(validate_event(visit(T0)))
    state.enrollments["j"] = Enrollment("j", 2, 1, T0, False, 0, T0, due_at=T0 + 5,
                                        vouchers={"o": "O-1"})
    state.vouchers["O-1"] = Voucher("o", "j@2", T0, T0 + DAY_MS)
    state.armed["k"] = T0 + 7
    copy = CustomerState.from_bytes("c1", state.to_bytes())
    assert copy == state
    assert copy.next_due() == T0 + 5


def _p_alive_reference(x: int, t_x: float, age: float, p: BgNbdParams) -> float:
    if x == 0:
        return 1.0
    odds = p.a / (p.b + x - 1) * ((p.alpha + age) / (p.alpha + t_x)) ** (p.r + x)
    return 1 / (1 + odds)


@pytest.mark.parametrize(("x", "t_x", "age"), [(1, 10, 20), (4, 60, 100), (30, 300, 310),
                                               (1000, 360, 365), (5, 50, 50)])
def test_p_alive_matches_the_closed_form(x: int, t_x: float, age: float) -> None:
    params = BgNbdParams()
    assert math.isclose(p_alive(x, t_x, age, params), _p_alive_reference(x, t_x, age, params),
                        rel_tol=1e-9)


def test_crossing_age_is_where_p_alive_reaches_the_threshold() -> None:
    for x, t_x in ((1, 5.0), (4, 60.0), (12, 84.0), (200, 360.0)):
        age = crossing_age(x, t_x, 0.3)
        assert age is not None and age >= t_x
        assert math.isclose(p_alive(x, t_x, age), 0.3, rel_tol=1e-9)
    assert crossing_age(0, 0.0, 0.3) is None
    due = p_alive_crossing_ms(5, T0, T0 + 60 * DAY_MS, 0.3)
    assert due is not None and due > T0 + 60 * DAY_MS


def test_yearly_dates_skip_to_next_year_and_handle_leap_days() -> None:
    start = 1_735_689_600_000  # 2025-01-01T00:00Z
    due = next_yearly("02-29", start, 10, 0, 0, "UTC")
    assert due == 1_740_736_800_000  # 2025-02-28T10:00Z
    assert next_yearly("01-01", start, 10, 0, 0, "UTC") == start + 10 * 3_600_000
    assert next_yearly("01-01", start + 11 * 3_600_000, 10, 0, 0, "UTC") > start + 364 * DAY_MS
