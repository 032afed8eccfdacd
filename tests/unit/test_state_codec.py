"""The stored form of a customer's state: round trips, the earlier forms, size."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from engine.core.events import validate_event
from engine.core.state import CustomerState, Enrollment, Voucher, event_id_hash
from engine.core.state_codec import (
    TRAINED,
    TRAINED_DICTIONARY_FILE,
    differences,
    pack,
    pack_with_words,
    running_sums,
    unpack,
)
from engine.core.timeutil import DAY_MS

T0 = 1_735_725_600_000


def regular(visits: int) -> CustomerState:
    """A customer with `visits` weekly visits, an ended and a running enrollment."""
    state = CustomerState("c1")
    state.profile.apply(validate_event({
        "event_id": "p", "customer_id": "c1", "type": "profile", "ts": T0,
        "name": "Ann Lee", "email": "ann.lee@example.org", "birthday": "1990-05-17",
        "timezone": "Europe/Berlin", "consents": {"email": True, "sms": False}}))
    for week in range(visits):
        state.profile.apply(validate_event({
            "event_id": f"v{week}", "customer_id": "c1", "type": "visit",
            "ts": T0 + week * 7 * DAY_MS + week * 3_517, "venue_id": "v01",
            "amount": 20.5 + week, "items": [{"name": "flat white", "category": "drinks",
                                               "price": 3.5}]}))
    state.enrollments["lost_regular"] = Enrollment(
        "lost_regular", 1, 2, T0, False, -1, T0 + DAY_MS, ended_at=T0 + DAY_MS,
        end_reason="completed", goal_deadline=T0 + 30 * DAY_MS, goal_reached=True,
        vouchers={"incentive": "INC-1"}, segment="regular")
    state.enrollments["review_request"] = Enrollment(
        "review_request", 3, 1, T0, True, 1, T0, due_at=T0 + 3 * DAY_MS)
    state.vouchers["INC-1"] = Voucher("incentive", "lost_regular@1", T0, T0 + 14 * DAY_MS)
    state.armed["birthday"] = T0 + 100 * DAY_MS
    for index, event_id in enumerate(["v1", "v2"]):
        assert state.refuse_event(event_id, T0 + index, 30 * DAY_MS) is None
    state.sent_log = [[T0, "email"]]
    return state


def test_every_field_round_trips() -> None:
    state = regular(40)
    stored = state.to_bytes()
    assert stored[0] == TRAINED
    assert CustomerState.from_bytes("c1", stored) == state


def test_the_form_compressed_with_the_word_list_is_still_read() -> None:
    state = regular(12)
    document, compact = unpack(state.to_bytes())
    older = pack_with_words(document)
    assert older[0] == 0x02 and unpack(older) == (document, compact)
    assert CustomerState.from_bytes("c1", older) == state


def test_the_trained_dictionary_is_the_one_format_3_was_written_with() -> None:
    """States of format 0x03 are readable with this file alone: a new dictionary needs a
    new format byte, not a new file under this one."""
    digest = hashlib.sha256(TRAINED_DICTIONARY_FILE.read_bytes()).hexdigest()
    assert digest.startswith("505c85bd872b89cf"), "state_dictionary.zdict changed"


def test_an_enrollment_of_another_journey_keeps_its_name() -> None:
    state = CustomerState("c1")
    state.enrollments["alias"] = Enrollment("welcome", 1, 1, T0, False, 0, T0)
    assert CustomerState.from_bytes("c1", state.to_bytes()).enrollments["alias"].journey == \
        "welcome"


def test_the_plain_json_form_of_earlier_releases_is_read() -> None:
    state = regular(3)
    profile = state.profile
    legacy = orjson.dumps({
        "p": {"name": profile.name, "email": profile.email, "birthday": profile.birthday,
              "timezone": profile.timezone, "consents": profile.consents,
              "first_visit_at": profile.first_visit_at,
              "first_visit_amount": profile.first_visit_amount,
              "last_visit_at": profile.last_visit_at, "visit_count": 3,
              "recent_visits": profile.recent_visits,
              "recent_amounts": profile.recent_amounts, "total_spend": profile.total_spend,
              "last_visit_amount": profile.last_visit_amount,
              "last_venue_id": "v01", "last_items": profile.last_items,
              "item_counts": profile.item_counts, "category_counts": profile.category_counts,
              "daypart_counts": profile.daypart_counts,
              "weekday_counts": profile.weekday_counts,
              "distinct_items": profile.distinct_items},
        "e": {k: {name: getattr(e, name) for name in (
            "journey", "version", "seq", "entered_at", "holdout", "step", "arrived_at",
            "due_at", "ended_at", "end_reason", "goal_deadline", "goal_reached", "vouchers",
            "segment")} for k, e in state.enrollments.items()},
        "v": {"INC-1": {"offer_id": "incentive", "journey": "lost_regular@1",
                        "issued_at": T0, "expires_at": T0 + 14 * DAY_MS}},
        "a": state.armed, "r": ["v1", "v2"], "s": state.sent_log})
    # the last 16 ids of earlier releases had no times: they count as of the last visit
    state.seen = {event_id_hash(i): profile.last_visit_at for i in ("v1", "v2")}
    state.seen_floor = 0
    assert CustomerState.from_bytes("c1", legacy) == state


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown state format byte 0x07"):
        unpack(b"\x07abc")


def test_a_year_of_weekly_visits_stays_well_under_a_kilobyte() -> None:
    state = regular(52)
    plain = len(orjson.dumps(unpack(state.to_bytes())[0]))
    assert len(state.to_bytes()) < 800 < plain
    assert len(state.to_bytes()) < len(pack_with_words(unpack(state.to_bytes())[0]))


def test_differences_and_running_sums_are_inverse() -> None:
    values = [T0, T0 + 5, T0 + 5, T0 + DAY_MS]
    assert differences(values) == [T0, 5, 0, DAY_MS - 5]
    assert running_sums(differences(values)) == values
    assert unpack(pack({"x": values}))[0] == {"x": values}
