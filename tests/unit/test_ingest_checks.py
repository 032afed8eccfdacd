"""The ingest service's pure checks: who sent a request, and which of its events the
engine would take (with the engine's own reasons for those it would not)."""

from __future__ import annotations

import orjson
import pytest

from connectors.ingest.auth import Authenticator, Refusal, sign
from connectors.ingest.batch import SOURCE_FIELD, BodyError, check_events, read_body
from connectors.ingest.config import HmacSettings, IngestConfig, SourceConfig
from engine.core.decoding import decode_line
from engine.core.events import EventError

KEY = b"pos-key-0123456789abcdef"
SECRET = b"bookings-secret-0123456789"
NOW = 1_767_000_000.0
CONFIG = IngestConfig("s.yaml", (
    SourceConfig("pos", api_keys=(b"old-key-0123456789abc", KEY)),
    SourceConfig("bookings", hmac=HmacSettings(SECRET, tolerance_s=300)),
))
BODY = b'{"event_id": "e1"}'


def identify(headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> str | Refusal:
    return Authenticator(CONFIG).identify({k.lower(): v for k, v in headers.items()}, body, now)


def signed(body: bytes = BODY, at: float = NOW, secret: bytes = SECRET) -> dict[str, str]:
    stamp = str(int(at))
    return {"X-Timestamp": stamp, "X-Signature": sign(secret, stamp, body)}


def test_an_api_key_names_its_source_whichever_of_its_keys() -> None:
    assert identify({"Authorization": f"Bearer {KEY.decode()}"}) == "pos"
    assert identify({"Authorization": "bearer old-key-0123456789abc"}) == "pos"


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "no credentials"),
    ({"Authorization": "Bearer wrong-key-0123456789"}, "unknown API key"),
    ({"Authorization": f"Basic {KEY.decode()}"}, "must be 'Bearer <key>'"),
    ({"Authorization": "Bearer "}, "must be 'Bearer <key>'"),
])
def test_a_missing_or_wrong_key_is_refused(headers: dict[str, str], reason: str) -> None:
    refusal = identify(headers)
    assert isinstance(refusal, Refusal) and reason in refusal.reason


def test_a_signed_request_names_its_source() -> None:
    assert identify(signed()) == "bookings"
    headers = signed()
    headers["X-Signature"] = "sha256=" + headers["X-Signature"].upper()
    assert identify(headers) == "bookings"
    assert identify(signed(at=NOW - 299)) == "bookings"


@pytest.mark.parametrize(("headers", "body", "reason"), [
    (signed(secret=b"another-secret-0123456789"), BODY, "does not match"),
    (signed(), b'{"event_id": "e2"}', "does not match"),
    (signed(at=NOW - 301), BODY, "stale or replayed"),
    (signed(at=NOW + 301), BODY, "stale or replayed"),
    ({"X-Signature": signed()["X-Signature"]}, BODY, "needs the X-Timestamp header"),
    ({**signed(), "X-Timestamp": "yesterday"}, BODY, "must be Unix seconds"),
    ({**signed(), "X-Timestamp": "nan"}, BODY, "stale or replayed"),
])
def test_a_bad_signature_or_a_stale_time_is_refused(headers: dict[str, str], body: bytes,
                                                    reason: str) -> None:
    refusal = identify(headers, body)
    assert isinstance(refusal, Refusal) and reason in refusal.reason, refusal


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    headers = signed(at=NOW - 1000)
    headers["X-Timestamp"] = str(int(NOW))  # a replay with a fresh time
    refusal = identify(headers)
    assert isinstance(refusal, Refusal) and "does not match" in refusal.reason


VISIT = {"event_id": "e1", "customer_id": "c1", "type": "visit", "ts": "2025-03-01T12:00:00Z",
         "venue_id": "v1", "amount": 20.5}


def test_bodies_of_every_shape_give_their_events() -> None:
    assert read_body(orjson.dumps(VISIT), "application/json") == [VISIT]
    assert read_body(orjson.dumps([VISIT, VISIT]), "") == [VISIT, VISIT]
    lines = orjson.dumps(VISIT) + b"\n\n" + orjson.dumps(VISIT) + b"\n"
    assert read_body(lines, "application/x-ndjson; charset=utf-8") == [VISIT, VISIT]


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    (b"  ", "application/json", "empty"),
    (b"[]", "application/json", "no events"),
    (b"{not json", "application/json", "not valid JSON"),
])
def test_a_body_without_events_is_a_body_error(body: bytes, content_type: str,
                                               reason: str) -> None:
    with pytest.raises(BodyError, match=reason):
        read_body(body, content_type)


BAD = [
    {**VISIT, "amount": -1},
    {key: value for key, value in VISIT.items() if key != "venue_id"},
    {**VISIT, "ts": "2025-03-01T12:00:00"},
    {**VISIT, "customer_id": 42},
    {**VISIT, "type": "purchase"},
    ["not", "an", "object"],
    {**VISIT, "type": "rating", "stars": 6},
]


def engine_reason(value: object) -> str:
    """What the engine's dead letter would say about the value, posted as it is."""
    with pytest.raises(EventError) as caught:
        decode_line(orjson.dumps(value))
    return caught.value.reason


def test_events_the_engine_would_dead_letter_are_refused_with_its_reasons() -> None:
    values = [VISIT, *BAD, {**VISIT, "event_id": "e2"}]
    checked = check_events(values, "pos")
    assert [event.index for event in checked.accepted] == [0, len(values) - 1]
    assert [(r.index, r.reason) for r in checked.refused] == [
        (index, engine_reason(value)) for index, value in enumerate(BAD, start=1)]


def test_an_unreadable_ndjson_line_is_refused_with_the_engine_reason() -> None:
    values = read_body(b'{"event_id": \n' + orjson.dumps(VISIT), "application/x-ndjson")
    checked = check_events(values, "pos")
    with pytest.raises(EventError) as caught:
        decode_line(b'{"event_id": ')
    assert [(r.index, r.reason) for r in checked.refused] == [(0, caught.value.reason)]
    assert [event.index for event in checked.accepted] == [1]


def test_an_accepted_event_is_tagged_with_its_source_and_decodes_as_sent() -> None:
    sent = {**VISIT, SOURCE_FIELD: "forged"}
    (accepted,) = check_events([sent], "pos").accepted
    stored = orjson.loads(accepted.line)
    assert stored[SOURCE_FIELD] == "pos"
    assert (accepted.event_id, accepted.customer_id) == ("e1", "c1")
    as_stored, as_sent = decode_line(accepted.line), decode_line(orjson.dumps(VISIT))
    as_stored.raw = as_sent.raw = None
    assert as_stored == as_sent
