"""The typed decoder accepts only what the validator accepts, and builds the same event."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.core.decoding import decode_line, decode_typed
from engine.core.events import EventError, validate_event
from journeys_dsl.fields import EVENT_FIELDS

TS = "2025-03-01T12:00:00+01:00"

# values a field may be given: right ones, wrong types, out-of-range numbers, odd strings
ANY_VALUE = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-10, max_value=2_000_000),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "x" * 201, "x" * 2001, "1990-05-17", "05-17", "13-40",
                     "Europe/Berlin", "Mars/Olympus", "delivered", "earned", "clickd",
                     "2025-03-01T12:00:00Z", "2025-03-01 12:00", "2025-03-01T12:00:00"]),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["sms", "email"]), st.booleans(), max_size=2),
    st.dictionaries(st.sampled_from(["sms"]), st.integers(0, 1), max_size=1),
)
ITEM = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=5), st.just("n" * 250), st.integers(0, 3))},
    optional={"category": st.one_of(st.none(), st.text(max_size=5), st.integers(0, 3)),
              "price": st.one_of(st.none(), st.floats(-1, 100), st.integers(-1, 100),
                                 st.booleans(), st.text(max_size=2)),
              "quantity": st.one_of(st.none(), st.integers(0, 5)),
              "note": st.text(max_size=3)})


VALID: dict[str, dict[str, Any]] = {
    "visit": {"venue_id": "v1", "amount": 42.5, "currency": "EUR", "party_size": 2,
              "channel": "pos", "source": "till", "items": [
                  {"name": "soup", "category": "starters", "price": 5.5, "quantity": 1}]},
    "rating": {"stars": 5, "text": "lovely", "venue_id": "v1"},
    "voucher_redeemed": {"voucher_id": "DESSERT-1", "venue_id": "v1"},
    "booking": {"venue_id": "v1", "party_size": 4, "booked_for": TS, "source": "web"},
    "profile": {"name": "Ann Lee", "email": "a@example.com", "phone": "+1",
                "telegram_chat_id": "77", "birthday": "1990-05-17",
                "timezone": "Europe/Rome", "language": "it", "consents": {"sms": True}},
    "message": {"status": "opened", "command_id": "k1", "channel": "sms", "journey": "j"},
    "points": {"kind": "earned", "amount": 12},
}
"""A valid event of each type, with every field."""


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with up to three fields dropped, replaced by odd values, or added."""
    event_type = draw(st.sampled_from(sorted(VALID)))
    raw: dict[str, Any] = {"event_id": "e1", "customer_id": "c1", "type": event_type,
                           "ts": draw(st.sampled_from([TS, 1_741_000_000_000]))}
    raw.update((k, v) for k, v in VALID[event_type].items() if draw(st.integers(0, 3)))
    names = [*raw, *EVENT_FIELDS[event_type], "extra", "items"]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        if draw(st.integers(0, 4)) == 0:
            raw.pop(name, None)
        elif name == "items":
            raw[name] = draw(st.one_of(st.lists(ITEM, max_size=3), ANY_VALUE))
        elif name == "type":
            raw[name] = draw(st.sampled_from([*EVENT_FIELDS, "presence", "", 7]))
        else:
            raw[name] = draw(ANY_VALUE)
    keys = draw(st.permutations(list(raw)))
    return {key: raw[key] for key in keys}


def exact(value: Any) -> Any:
    """A value with its types and the order of its keys, so that 1 != 1.0 and key order
    counts."""
    if isinstance(value, dict):
        return [(k, exact(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [exact(v) for v in value]
    return (type(value).__name__, value)


def slow(line: bytes) -> Any:
    try:
        event = validate_event(orjson.loads(line), 3)
    except EventError as exc:
        return ("refused", exc.reason)
    return event


@settings(max_examples=3000, deadline=None)
@given(raw_events())
def test_the_typed_decoder_agrees_with_the_validator(raw: dict[str, Any]) -> None:
    line = json.dumps(raw).encode()  # whole numbers of any size
    fast = decode_typed(line, 3)
    expected = slow(line)
    verdict = "refused" if isinstance(expected, tuple) else "accepted"
    event(f"typed: {fast is not None}; validator: {verdict}")
    if fast is None:
        return  # the validator decides
    assert not isinstance(expected, tuple), f"accepted what the validator refuses: {expected}"
    assert (fast.event_id, fast.customer_id, fast.type, fast.ts, fast.utc_offset_s,
            fast.position) == (expected.event_id, expected.customer_id, expected.type,
                               expected.ts, expected.utc_offset_s, expected.position)
    assert exact(fast.data) == exact(expected.data)


def test_common_events_take_the_typed_path() -> None:
    visit = orjson.dumps({"event_id": "e1", "customer_id": "c1", "type": "visit", "ts": TS,
                          "venue_id": "v1", "amount": 42, "items": [
                              {"name": "soup", "category": "starters", "price": 5.5}]})
    event = decode_typed(visit, 0)
    assert event is not None and event.data == {
        "venue_id": "v1", "amount": 42, "items": [
            {"name": "soup", "category": "starters", "price": 5.5}]}
    profile = orjson.dumps({"event_id": "e2", "customer_id": "c1", "type": "profile",
                            "ts": TS, "birthday": "1990-05-17", "timezone": "Europe/Rome"})
    decoded = decode_typed(profile, 0)
    assert decoded is not None and decoded.data["birthday"] == "05-17"


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"event_id": "e", "customer_id": "c", "type": "visit", "ts": 1741000000000, '
     b'"venue_id": 12, "amount": 3}', None),  # a number for an id: the validator converts it
    (b'{"event_id": "e", "customer_id": "c", "type": "visit", "ts": 1741000000000, '
     b'"venue_id": "v", "amount": -3}', "'amount' must be at least 0, got -3"),
    (b'{"event_id": "e", "customer_id": "c", "type": "teleport", "ts": 1741000000000}',
     "unknown event type 'teleport'"),
    (b'{"event_id": 5, "customer_id": "c", "type": "rating", "ts": 1741000000000, '
     b'"stars": 5}', "'event_id' must be a string, got a number: quote it"),
])
def test_what_the_types_refuse_gets_the_validators_reason(line: bytes,
                                                          reason: str | None) -> None:
    assert decode_typed(line, 0) is None
    if reason is None:
        assert decode_line(line).data["venue_id"] == "12"
    else:
        with pytest.raises(EventError) as refused:
            decode_line(line)
        assert refused.value.reason.startswith(reason)


def test_deep_nesting_is_refused_not_raised() -> None:
    line = (b'{"event_id": "e", "customer_id": "c", "type": "visit", "ts": 1741000000000, '
            b'"venue_id": "v", "amount": 1, "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert decode_typed(line, 0) is None
    with pytest.raises(EventError, match="not valid JSON"):
        decode_line(line)
