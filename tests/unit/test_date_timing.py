"""Steps and entries timed by a date of the entry event or of the profile: the time
computation (time zones, clock changes, leap days), the runtime's rules (a date passed, a
date missing, a date too far), the stored form, validation, the schema and the labels."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from engine.console.explain import Explainer
from engine.core.dates import (
    MAX_AHEAD_MS,
    at_date_time,
    field_entry_due,
    parse_date_text,
    read_date,
)
from engine.core.events import validate_event
from engine.core.state import CustomerState, Enrollment
from engine.reporting.flow import flow_diagram
from engine.reporting.labels import timing_label
from engine.reporting.model import RunFacts
from engine.reporting.stats import build_report
from engine.testing import JourneyTester
from journeys_dsl.errors import JourneyValidationError, Problem
from journeys_dsl.loader import check_journeys, load_journey_text
from journeys_dsl.plan import AtDate, DateFieldEntry, DateRef, EventDateEntry
from journeys_dsl.policies import NO_POLICIES
from journeys_dsl.schema import journey_json_schema
from journeys_dsl.segments import EMPTY_MODEL

DAY = 86_400_000
HOUR = 3_600_000
FILE = "j.yaml"
Customer = functools.partial(JourneyTester, customer_model=EMPTY_MODEL)
BOOKED_FOR = DateRef("event", "booked_for")
BIRTHDAY = DateRef("customer", "birthday")


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def iso(ts: int | None) -> str:
    assert ts is not None
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def at(date: DateRef = BOOKED_FOR, offset_s: int = 0,
       local_time: tuple[int, int] | None = None) -> AtDate:
    return AtDate(date, offset_s, local_time)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("text", "value"), [
    ("2025-03-20T19:30:00+01:00", ms("2025-03-20T19:30:00+01:00")),
    ("2025-03-20T18:30:00Z", ms("2025-03-20T18:30:00+00:00")),
    ("2025-03-20", "2025-03-20"),
    ("2025-03-20T19:30", "2025-03-20T19:30"),
    ("2025-03-20 19:30:15", "2025-03-20T19:30"),
    ("tomorrow", None),
    ("2025-13-01", None),
    ("1899-01-01", None),
    ("2300-01-01T10:00:00+00:00", None),
    ("", None),
])
def test_event_dates_read_as_moments_or_local_dates(text: str, value: object) -> None:
    assert parse_date_text(text) == value


def test_values_that_are_not_dates_read_as_missing() -> None:
    assert read_date(None, "iso") is None
    assert read_date(True, "iso") is None
    assert read_date(3.5, "iso") is None
    assert read_date(["2025-03-20"], "iso") is None
    assert read_date("05-17", "month_day") == "05-17"
    assert read_date("13-40", "month_day") is None
    assert read_date(ms("2025-03-20T10:00:00+00:00"), "instant") == ms("2025-03-20T10:00:00+00:00")
    assert read_date("2025-03-20", None) is None


# --------------------------------------------------------------------------- times


def test_a_day_before_at_ten_is_local_time_in_the_customer_zone() -> None:
    booked = ms("2025-03-20T19:30:00+01:00")
    due = at_date_time(at(offset_s=-86_400, local_time=(10, 0)), booked, 0, "Europe/Berlin")
    assert iso(due) == "2025-03-19T09:00"  # 10:00 CET
    due = at_date_time(at(offset_s=-86_400, local_time=(10, 0)), booked, 0, "America/New_York")
    assert iso(due) == "2025-03-19T14:00"  # 10:00 EDT on the New York day of the booking


def test_days_move_on_the_local_calendar_across_a_clock_change() -> None:
    # Sunday 2025-03-30 19:30 CEST; clocks went forward that night
    booked = ms("2025-03-30T19:30:00+02:00")
    due = at_date_time(at(offset_s=-86_400), booked, 0, "Europe/Berlin")
    assert iso(due) == "2025-03-29T18:30"  # 19:30 CET the evening before, not 18:30 local
    due = at_date_time(at(offset_s=-7200), booked, 0, "Europe/Berlin")
    assert iso(due) == "2025-03-30T15:30"  # hours are exact: 17:30 CEST
    # autumn: 2025-10-26 the clocks go back
    booked = ms("2025-10-26T12:00:00+01:00")
    due = at_date_time(at(offset_s=-86_400, local_time=(10, 0)), booked, 0, "Europe/Berlin")
    assert iso(due) == "2025-10-25T08:00"  # 10:00 CEST
    due = at_date_time(at(offset_s=2 * 86_400), booked, 0, "Europe/Berlin")
    assert iso(due) == "2025-10-28T11:00"  # 12:00 CET


def test_a_time_that_does_not_exist_reads_as_before_the_change() -> None:
    due = at_date_time(at(local_time=(2, 30)), "2025-03-30", 0, "Europe/Berlin")
    assert iso(due) == "2025-03-30T01:30"  # 02:30 CET, i.e. 03:30 CEST


def test_local_dates_and_times_read_in_the_customer_zone() -> None:
    assert iso(at_date_time(at(), "2025-06-01", 0, "Europe/Berlin")) == "2025-06-01T08:00"
    assert iso(at_date_time(at(offset_s=-86_400), "2025-06-01", 0, "Asia/Tokyo")) \
        == "2025-05-31T01:00"  # a date alone is taken at 10:00
    assert iso(at_date_time(at(offset_s=-3600), "2025-06-01T19:30", 0, "Europe/London")) \
        == "2025-06-01T17:30"  # 18:30 BST
    assert iso(at_date_time(at(local_time=(9, 0)), "2025-06-01T19:30", 0, None)) \
        == "2025-06-01T09:00"  # no zone: UTC


def test_a_yearly_date_in_a_step_is_its_next_occurrence_from_entry() -> None:
    step = at(BIRTHDAY, -3 * 86_400, (10, 0))
    entered = ms("2025-05-10T12:00:00+02:00")
    assert iso(at_date_time(step, "05-17", entered, "Europe/Berlin")) == "2025-05-14T08:00"
    assert iso(at_date_time(step, "05-10", entered, "Europe/Berlin")) == "2025-05-07T08:00"
    assert iso(at_date_time(step, "05-09", entered, "Europe/Berlin")) == "2026-05-06T08:00"
    leap = at(BIRTHDAY, 0, (10, 0))
    assert iso(at_date_time(leap, "02-29", ms("2025-01-01T00:00:00+00:00"), None)) \
        == "2025-02-28T10:00"


def test_yearly_entries_come_in_the_years_after_a_dated_date() -> None:
    state = CustomerState("ann")
    state.profile.timezone = "Europe/Berlin"
    state.profile.first_visit_at = first = ms("2025-03-03T09:00:00+01:00")
    entry = DateFieldEntry(DateRef("customer", "first_visit_at"), True, -7 * 86_400, None,
                           None)
    assert iso(field_entry_due(state, entry, first)) == "2026-02-24T09:00"  # 10:00 CET
    assert iso(field_entry_due(state, entry, ms("2026-02-24T09:00:00+00:00"))) \
        == "2027-02-24T09:00"
    once = DateFieldEntry(DateRef("customer", "first_visit_at"), False, 30 * 86_400, (18, 0),
                          None)
    assert iso(field_entry_due(state, once, first)) == "2025-04-02T16:00"  # 18:00 CEST
    assert field_entry_due(state, once, ms("2025-04-03T00:00:00+00:00")) is None
    birthday = DateFieldEntry(BIRTHDAY, True, 0, (9, 30), None)
    assert field_entry_due(state, birthday, first) is None  # no birthday in the profile
    state.profile.birthday = "03-01"
    assert iso(field_entry_due(state, birthday, first)) == "2026-03-01T08:30"


# --------------------------------------------------------------------------- the runtime

REMINDER = """\
journey: booking_reminder
version: 1
entry:
  event: booking
re_entry: always
steps:
  - id: remind
    at: {date: event.booked_for, before: 1d, time: "10:00"}
    actions: [{send: email, template: booking_reminder}]
  - id: thanks
    at: {date: event.booked_for, after: 3h}
    actions: [{send: sms, template: booking_thanks}]
"""
START = ms("2025-03-03T12:00:00+01:00")


def booking(booked_for: object, *, zone: str = "Europe/Berlin",
            made: int = START) -> JourneyTester:
    ann = Customer(REMINDER, start_ms=START - HOUR)
    ann.event("profile", START - HOUR, timezone=zone)
    fields = {} if booked_for is None else {"booked_for": booked_for}
    ann.event("booking", made, venue_id="v1", party_size=2, **fields)
    ann.advance(days=800)
    return ann


def sends(tester: JourneyTester) -> list[tuple[str, str]]:
    return [(c["step"], c["send_at"]) for c in tester.commands]


def test_a_booking_reminder_goes_out_the_day_before_at_ten() -> None:
    ann = booking("2025-03-20T19:30:00+01:00")
    assert sends(ann) == [("remind", "2025-03-19T09:00:00.000Z"),
                          ("thanks", "2025-03-20T21:30:00.000Z")]
    assert ann.stats["booking_reminder@1|completed"] == 1


def test_a_booking_made_too_late_skips_the_reminder_with_a_reason() -> None:
    ann = booking("2025-03-03T19:30:00+01:00")  # booked at 12:00 for tonight
    assert sends(ann) == [("thanks", "2025-03-03T21:30:00.000Z")]
    assert ann.stats["booking_reminder@1|date_passed:remind"] == 1
    assert ann.stats["booking_reminder@1|skipped:remind"] == 1
    assert ann.stats["booking_reminder@1|edge:remind:thanks"] == 1


@pytest.mark.parametrize("booked_for", [None, "next friday", "2025-02-30T19:00:00+01:00"])
def test_a_missing_or_invalid_date_skips_its_steps(booked_for: object) -> None:
    ann = booking(booked_for)
    assert sends(ann) == []
    assert ann.stats["booking_reminder@1|no_date:remind"] == 1
    assert ann.stats["booking_reminder@1|no_date:thanks"] == 1
    assert ann.stats["booking_reminder@1|completed"] == 1


def test_a_date_more_than_two_years_ahead_is_skipped() -> None:
    ann = booking("2031-03-20T19:30:00+01:00")
    assert sends(ann) == []
    assert ann.stats["booking_reminder@1|date_too_far:remind"] == 1
    assert MAX_AHEAD_MS == 730 * DAY
    near = booking("2026-03-20T19:30:00+01:00")  # a year ahead waits
    assert [step for step, _ in sends(near)] == ["remind", "thanks"]


def test_a_local_booking_time_reads_in_the_customer_zone() -> None:
    ann = booking("2025-03-20T19:30", zone="America/New_York")
    assert sends(ann) == [("remind", "2025-03-19T14:00:00.000Z"),
                          ("thanks", "2025-03-21T02:30:00.000Z")]  # 22:30 EDT


def test_the_date_is_kept_on_the_enrollment_and_survives_storage() -> None:
    ann = Customer(REMINDER)
    ann.event("booking", venue_id="v1", booked_for="2025-03-20T19:30:00+01:00")
    enrollment = ann.state.enrollments["booking_reminder"]
    assert enrollment.dates == [ms("2025-03-20T19:30:00+01:00")]
    loaded = CustomerState.from_bytes("ann", ann.state.to_bytes())
    assert loaded.enrollments["booking_reminder"].dates == enrollment.dates
    ann.state = loaded
    ann.advance(days=30)
    assert [step for step, _ in sends(ann)] == ["remind", "thanks"]


def test_states_stored_without_dates_still_load() -> None:
    state = CustomerState("ann")
    state.enrollments["j"] = Enrollment("j", 1, 1, START, False, 0, START, START + DAY)
    loaded = CustomerState.from_bytes("ann", state.to_bytes())
    assert loaded.enrollments["j"].dates is None
    assert loaded.to_bytes() == state.to_bytes()
    state.enrollments["j"].variant = "a"  # a split's variant is stored before the dates
    loaded = CustomerState.from_bytes("ann", state.to_bytes())
    assert (loaded.enrollments["j"].variant, loaded.enrollments["j"].dates) == ("a", None)
    state.enrollments["j"].dates = [START, "2025-06-01", None]
    loaded = CustomerState.from_bytes("ann", state.to_bytes())
    assert loaded.enrollments["j"] == state.enrollments["j"]


def test_a_step_timed_by_a_profile_date_reads_the_profile() -> None:
    birthday = load_journey_text("""\
journey: birthday_club
version: 1
entry: {event: visit}
steps:
  - id: wishes
    at: {date: customer.birthday, before: 1d, time: "09:00"}
    actions: [{send: email, template: wishes}]
""", FILE)
    ann = Customer(birthday)
    ann.event("profile", START - HOUR, birthday="1990-03-10", timezone="Europe/Berlin")
    ann.visit(START)
    bob = Customer(birthday, customer_id="bob")
    bob.visit(START)
    for tester in (ann, bob):
        tester.advance(days=400)
    assert sends(ann) == [("wishes", "2025-03-09T08:00:00.000Z")]
    assert bob.stats["birthday_club@1|no_date:wishes"] == 1


ARMED = """\
journey: booking_eve
version: 1
entry:
  event: booking
  when: "event.party_size >= 4"
  at: {date: event.booked_for, before: 1d, time: "18:00"}
re_entry: always
steps:
  - id: eve
    actions: [{send: sms, template: see_you_tomorrow}]
"""


def test_an_entry_at_an_event_date_is_armed_and_moved_by_a_later_event() -> None:
    ann = Customer(ARMED)
    ann.event("profile", START - HOUR, timezone="Europe/Berlin")
    ann.event("booking", START, party_size=6, booked_for="2025-03-20T19:30:00+01:00")
    assert ann.state.armed["booking_eve"] == ms("2025-03-19T18:00:00+01:00")
    ann.event("booking", START + HOUR, party_size=2, booked_for="2025-03-10T19:30:00+01:00")
    assert ann.state.armed["booking_eve"] == ms("2025-03-19T18:00:00+01:00")  # too small
    ann.event("booking", START + 2 * HOUR, party_size=5,
              booked_for="2025-03-25T12:00:00+01:00")  # moved
    assert ann.state.armed["booking_eve"] == ms("2025-03-24T18:00:00+01:00")
    ann.advance(days=30)
    assert sends(ann) == [("eve", "2025-03-24T17:00:00.000Z")]
    assert ann.stats["booking_eve@1|entered"] == 1


def test_an_event_whose_entry_time_has_passed_disarms_the_entry() -> None:
    ann = Customer(ARMED)
    ann.event("booking", START, party_size=6, booked_for="2025-03-20T19:30:00+01:00")
    ann.event("booking", START + HOUR, party_size=6, booked_for="2025-03-03T20:00:00+01:00")
    assert "booking_eve" not in ann.state.armed
    ann.event("booking", START + 2 * HOUR, party_size=6, booked_for="soon")
    ann.advance(days=30)
    assert sends(ann) == []
    assert ann.stats["booking_eve@1|entry_date_passed"] == 1
    assert ann.stats["booking_eve@1|entry_no_date"] == 1


def test_a_yearly_entry_on_a_profile_date() -> None:
    anniversary = load_journey_text("""\
journey: member_anniversary
version: 1
entry:
  date: {field: customer.first_visit_at, every: year, before: 7d, time: "11:00"}
  when: "customer.visit_count >= 2"
re_entry: always
steps:
  - id: gift
    actions: [{points: 200}, {send: email, template: anniversary}]
""", FILE)
    ann = Customer(anniversary)
    ann.event("profile", START - HOUR, timezone="Europe/Berlin")
    ann.visit(START)
    ann.visit(START + 10 * DAY)
    ann.advance(days=800)
    assert sends(ann) == [("gift", "2026-02-24T10:00:00.000Z"),
                          ("gift", "2027-02-24T10:00:00.000Z")]
    bob = Customer(anniversary, customer_id="bob")
    bob.visit(START)  # one visit: the condition is false on the day
    bob.advance(days=400)
    assert sends(bob) == []
    assert "member_anniversary" in bob.state.armed  # armed for the next year


# --------------------------------------------------------------------------- validation


def problems_of(text: str) -> list[str]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE)
    return [str(problem) for problem in caught.value.problems]


def step_at(value: str, entry: str = "entry:\n  event: booking\n") -> str:
    # lines: 1 journey, 2 version, 3-4 entry, 5 steps, 6 id, 7 at, 8 actions
    return ("journey: j\nversion: 1\n" + entry + "steps:\n  - id: s\n"
            f"    at: {value}\n    actions: [{{send: email, template: t}}]\n")


@pytest.mark.parametrize(("value", "expected"), [
    ("{date: event.booked_fro}",
     "j.yaml:7:22: unknown field 'booked_fro' of a booking event; did you mean "
     "'booked_for'? (at steps[0].at.date)"),
    ("{date: event.party_size}",
     "j.yaml:7:22: 'event.party_size' is not a date; dates of a booking event: booked_for "
     "(at steps[0].at.date)"),
    ("{date: customer.visit_count}",
     "j.yaml:7:25: 'customer.visit_count' is not a date; dates of the customer: birthday, "
     "first_visit_at, last_visit_at, last_rating_at, first_presence_at, last_presence_at "
     "(at steps[0].at.date)"),
    ("{date: customer.birthdy}",
     "j.yaml:7:25: unknown field 'birthdy' of the customer; did you mean 'birthday'? "
     "(at steps[0].at.date)"),
    ("{date: evnt.booked_for}",
     "j.yaml:7:16: 'evnt.booked_for' is not a date field; name a date of the entry event "
     "(event.booked_for) or of the customer (customer.birthday, customer.first_visit_at, "
     "customer.last_visit_at, customer.last_rating_at, customer.first_presence_at, "
     "customer.last_presence_at); did you mean 'event'?"),
    ("{date: event.booked_for, before: 1d, after: 2h}",
     "j.yaml:7:46: give 'before' or 'after', not both (at steps[0].at.after)"),
    ("{date: event.booked_for, before: 1M}",
     "j.yaml:7:42: months and years vary in length; use days or weeks in '1M'"),
    ("{date: event.booked_for, before: 2}",
     "j.yaml:7:42: add a unit, e.g. '2d' for 2 days (at steps[0].at.before)"),
    ('{date: event.booked_for, time: "25:00"}',
     "j.yaml:7:40: '25:00' is not a time of day"),
    ("{date: event.booked_for, befor: 1d}",
     "j.yaml:7:34: unknown key 'befor' in steps[0].at; did you mean 'before'? "
     "(at steps[0].at.befor)"),
    ("{before: 1d}",
     "j.yaml:7:9: missing required key 'date' in steps[0].at (at steps[0].at.date)"),
])
def test_date_step_problems_are_reported_where_they_are(value: str, expected: str) -> None:
    found = problems_of(step_at(value))
    assert any(problem.startswith(expected) for problem in found), found


def test_an_event_date_needs_a_journey_entered_on_that_event() -> None:
    [problem] = problems_of(step_at("{date: event.booked_for}", "entry:\n  event: visit\n"))
    assert problem.startswith("j.yaml:7:22: unknown field 'booked_for' of a visit event; "
                              "a visit event has no date field")
    [problem] = problems_of(step_at("{date: event.booked_for}",
                                    "entry:\n  inactive_for: 30d\n"))
    assert problem.startswith("j.yaml:7:16: this journey is not entered on an event, so "
                              "there is no event date; use a date of the customer")
    armed = "entry:\n  event: booking\n  at: {date: event.booked_for, before: 1d}\n"
    [problem] = problems_of(step_at("{date: event.booked_for}", armed))
    assert problem.startswith("j.yaml:8:16: the customer enters this journey at a time "
                              "computed from the event, which is not kept until then; enter "
                              "on the event itself (entry: {event: booking})")


def test_entry_date_problems_are_reported_where_they_are() -> None:
    head = "journey: j\nversion: 1\nentry:\n"
    tail = "steps:\n  - id: s\n    actions: [{send: email, template: t}]\n"
    cases = [
        ("  date: {field: customer.birthday, before: 3d}\n",
         "j.yaml:4:17: 'customer.birthday' has no year, so it comes back every year: add "
         "'every: year' (at entry.date.field)"),
        ("  date: {field: customer.first_visit_at, every: month}\n",
         "j.yaml:4:49: unknown every 'month'; use one of: year (at entry.date.every)"),
        ("  date: {field: event.booked_for, every: year}\n",
         "j.yaml:4:17: a date entry has no triggering event"),
        ("  date: {field: customer.first_visit_at}\n  offset: -3d\n",
         "j.yaml:5:3: 'offset' goes with 'date: birthday'"),
        ("  event: booking\n  at: day 1\n",
         "j.yaml:5:7: 'at' of an event entry is a date and a shift"),
        ("  event: visit\n  at: {date: event.booked_for}\n",
         "j.yaml:5:20: unknown field 'booked_for' of a visit event"),
        ("  inactive_for: 30d\n  at: {date: customer.birthday}\n",
         "j.yaml:5:3: 'at' applies to an event entry (event: booking, at: {date: "
         "event.booked_for, before: 1d}) or a date entry (date: {field: customer.birthday, "
         "every: year, time: \"10:00\"}), not with 'inactive_for' (at entry.at)"),
        ("  segment: {enters: vip}\n  offset: 1d\n",
         "j.yaml:5:3: 'offset' only applies to a date entry (date: birthday | "
         "first_visit_anniversary), not with 'segment' (at entry.offset)"),
    ]
    for entry, expected in cases:
        found = problems_of(head + entry + tail)
        assert any(problem.startswith(expected) for problem in found), (entry, found)


def test_valid_date_timings_compile_to_their_plans() -> None:
    reminder = load_journey_text(REMINDER, FILE)
    assert reminder.steps[0].timing == AtDate(BOOKED_FOR, -86_400, (10, 0))
    assert reminder.steps[1].timing == AtDate(BOOKED_FOR, 3 * 3600, None)
    assert reminder.event_dates == ("booked_for",)
    armed = load_journey_text(ARMED, FILE)
    assert isinstance(armed.entry, EventDateEntry)
    assert armed.entry.at == AtDate(BOOKED_FOR, -86_400, (18, 0))
    assert armed.event_dates == ()


def test_date_steps_raise_no_out_of_order_warning(tmp_path: Path) -> None:
    text = """\
journey: j
version: 1
entry: {event: booking}
steps:
  - id: first
    at: day 10
    actions: [{send: email, template: a}]
  - id: reminder
    at: {date: event.booked_for, before: 1d, time: "10:00"}
    actions: [{send: email, template: b}]
  - id: after
    at: day 3
    actions: [{send: email, template: c}]
  - id: follow_up
    at: {date: customer.birthday, after: 2h}
    actions: [{send: email, template: d}]
"""
    file = tmp_path / FILE
    file.write_text(text)
    checked = check_journeys([file])
    assert checked.problems == []
    assert [Problem.__str__(w) for w in checked.warnings] == []


# --------------------------------------------------------------------------- schema, labels


def test_the_schema_accepts_date_timings_and_refuses_their_mistakes() -> None:
    validator = jsonschema.Draft202012Validator(journey_json_schema())
    for text in (REMINDER, ARMED):
        assert list(validator.iter_errors(yaml.safe_load(text))) == []
    yearly = yaml.safe_load(ARMED)
    yearly["entry"] = {"date": {"field": "customer.first_visit_at", "every": "year",
                                "before": "7d", "time": "10:00"}}
    assert validator.is_valid(yearly)
    for broken_at in ({"date": "event.booked_fro"},
                      {"date": "event.booked_for", "before": "1d", "after": "1d"},
                      {"date": "event.booked_for", "before": "1"},
                      {"date": "event.booked_for", "at": "10:00"}):
        broken = yaml.safe_load(REMINDER)
        broken["steps"][0]["at"] = broken_at
        assert not validator.is_valid(broken), broken_at


def test_labels_name_the_date_and_the_shift() -> None:
    reminder = load_journey_text(REMINDER, FILE)
    assert timing_label(reminder.steps[0]) == "1d before event.booked_for at 10:00"
    assert timing_label(reminder.steps[1]) == "3h after event.booked_for"


def test_a_customer_date_changed_before_the_step_moves_it_later_never_earlier() -> None:
    club = load_journey_text("""\
journey: birthday_club
version: 1
entry: {event: visit}
steps:
  - id: wishes
    at: {date: customer.birthday, time: "09:00"}
    actions: [{send: email, template: wishes}]
""", FILE)
    later = Customer(club)
    later.event("profile", START - HOUR, birthday="03-10")
    later.visit(START)
    later.event("profile", START + HOUR, birthday="03-20")
    later.advance(days=60)
    assert sends(later) == [("wishes", "2025-03-20T09:00:00.000Z")]
    earlier = Customer(club, customer_id="bob")
    earlier.event("profile", START - HOUR, birthday="03-20")
    earlier.visit(START)
    earlier.event("profile", START + HOUR, birthday="03-10")
    earlier.advance(days=60)
    assert sends(earlier) == [("wishes", "2025-03-20T09:00:00.000Z")]


def test_the_flow_diagram_and_the_explanation_show_the_date_timing() -> None:
    reminder = load_journey_text(REMINDER, FILE)
    ann = Customer(reminder)
    ann.event("profile", START - HOUR, timezone="Europe/Berlin")
    ann.event("booking", START, venue_id="v1", booked_for="2025-03-20T19:30:00+01:00")
    ann.advance(days=30)
    report = build_report(ann.stats, [reminder], RunFacts("now", "test"))
    diagram = flow_diagram(report.journeys[0])
    assert "1d before event.booked_for at 10:00" in diagram
    assert "3h after event.booked_for" in diagram
    bob = Customer(reminder, customer_id="bob")
    bob.event("profile", START - HOUR, timezone="Europe/Berlin")
    booked = validate_event({"event_id": "b1", "customer_id": "bob", "type": "booking",
                             "ts": START, "booked_for": "2025-03-20T19:30:00+01:00"})
    result = Explainer(bob.runtime, NO_POLICIES).explain(
        bob.state, reminder, bob.runtime.context(bob.aggregates), START, booked)
    assert result.verdict == "would_enter"
    assert [(s.step_id, s.timing, iso(s.at)) for s in result.steps] == [
        ("remind", "1d before event.booked_for at 10:00", "2025-03-19T09:00"),
        ("thanks", "3h after event.booked_for", "2025-03-20T21:30")]


def test_a_shift_past_any_calendar_is_too_far_not_a_crash() -> None:
    ann = Customer(REMINDER.replace("before: 1d", "before: 600000w"))
    ann.event("booking", START, booked_for="2025-03-20T19:30:00+01:00")
    ann.advance(days=30)
    assert ann.stats["booking_reminder@1|date_too_far:remind"] == 1
    state = CustomerState("ann")
    state.profile.first_visit_at = START
    far = DateFieldEntry(DateRef("customer", "first_visit_at"), True, 600_000 * 7 * 86_400,
                         None, None)
    assert field_entry_due(state, far, START) is None


def test_a_date_step_timed_before_the_date_step_it_follows_is_flagged(tmp_path: Path) -> None:
    text = """\
journey: j
version: 1
entry: {event: booking}
steps:
  - id: thanks
    at: {date: event.booked_for, after: 3h}
    actions: [{send: sms, template: a}]
  - id: remind
    at: {date: event.booked_for, before: 1d}
    actions: [{send: email, template: b}]
  - id: eve
    at: {date: event.booked_for, before: 1d, time: "18:00"}
    actions: [{send: email, template: c}]
  - id: morning
    at: {date: event.booked_for, before: 1d, time: "09:00"}
    actions: [{send: email, template: d}]
"""
    file = tmp_path / FILE
    file.write_text(text)
    checked = check_journeys([file])
    assert checked.problems == []
    assert [str(w).removeprefix(f"{tmp_path}/") for w in checked.warnings] == [
        "j.yaml:9:9: warning: 1d before event.booked_for comes before step 'thanks' (3h after "
        "event.booked_for): steps run in order, so 'remind' is reached after its time and "
        "always skipped; move it before 'thanks' (at steps[1].at)",
        "j.yaml:15:9: warning: 1d before event.booked_for at 09:00 comes before step 'eve' "
        "(1d before event.booked_for at 18:00): steps run in order, so 'morning' is reached "
        "after its time and always skipped; move it before 'eve' (at steps[3].at)"]


def test_the_explanation_of_an_entry_at_an_event_date_names_its_timer() -> None:
    eve = load_journey_text(ARMED, FILE)
    ann = Customer(eve)
    ann.event("profile", START - HOUR, timezone="Europe/Berlin")
    ann.event("booking", START, party_size=6, booked_for="2025-03-20T19:30:00+01:00")
    result = Explainer(ann.runtime, NO_POLICIES).explain(
        ann.state, eve, ann.runtime.context(ann.aggregates), START + HOUR)
    assert result.verdict == "would_enter"
    timer = next(check for check in result.checks if check.name == "entry timer")
    assert timer.passed
    assert "1d before event.booked_for at 18:00 of the latest booking event" in timer.detail
    assert [(s.step_id, iso(s.at)) for s in result.steps] == [("eve", "2025-03-19T17:00")]
