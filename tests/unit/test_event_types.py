"""The event types file: declarations, their FILE:LINE:COL problems, events checked
against them, and journeys validated against the declared fields."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from engine.core.declared_events import install, validate_declared
from engine.core.decoding import decode_line
from engine.core.events import EventError
from journeys_dsl.commands import schema_command
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.event_types import (
    DeclaredField,
    DeclaredType,
    journey_vocabulary,
    load_event_types,
    load_event_types_text,
)
from journeys_dsl.loader import load_journey_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "event_types.yaml"

TYPES = """\
types:
  table_booked:
    venue: true
    fields:
      party_size: {type: int, min: 1, max: 1000}
      booked_for: {type: datetime, required: true}
      area: {type: text, values: [inside, terrace]}
      deposit: number
      vip: bool
      day: date
"""


@pytest.fixture(autouse=True)
def _no_declared_types() -> object:
    yield
    install()


def problems(text: str) -> list[str]:
    with pytest.raises(JourneyValidationError) as caught:
        load_event_types_text(text, "types.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_shipped_example_loads() -> None:
    types = load_event_types(EXAMPLE)
    assert set(types.types) == {"table_booked", "ticket_scanned"}
    assert types.types["ticket_scanned"].visit and types.types["table_booked"].venue
    assert types.presence_zones == ("cloakroom", "rooftop")
    assert types.event_fields()["table_booked"] == ("venue_id", "party_size", "booked_for",
                                                    "area")


def test_a_declaration_compiles() -> None:
    declared = load_event_types_text(TYPES, "types.yaml").types["table_booked"]
    assert declared.fields[0] == DeclaredField("party_size", "int", False, (), 1.0, 1000.0)
    assert declared.fields[1] == DeclaredField("booked_for", "datetime", True)
    assert declared.fields[2].values == ("inside", "terrace")


@pytest.mark.parametrize(("text", "expected"), [
    ("types:\n  t:\n    fields:\n      n: integer\n",
     "types.yaml:4:10: unknown field type 'integer'; did you mean 'int'?"),
    ("types:\n  visit:\n    fields: {}\n",
     "types.yaml:2:3: 'visit' is a built-in event type; give the declared type another name"),
    ("types:\n  t:\n    venu: true\n",
     "types.yaml:3:5: unknown key 'venu' in event type 't'; did you mean 'venue'?"),
    ("types:\n  t:\n    fields:\n      n: {type: int, values: [a]}\n",
     "types.yaml:4:30: 'values' applies to text fields, not int"),
    ("types:\n  t:\n    visit: true\n    fields:\n      amount: text\n",
     "types.yaml:2:3: 't' counts as a visit, so its 'amount' must be a number"),
    ("types:\n  t:\n    fields:\n      venue_id: text\n",
     "types.yaml:4:7: 'venue_id' is a field every event has or the engine sets; do not "
     "declare it; set 'venue: true' to give the type a venue_id"),
    ("types:\n  Table-Booked:\n    fields: {}\n",
     "types.yaml:2:3: event type 'Table-Booked' is not valid"),
    ("types:\n  t:\n    venue: yes please\n",
     "types.yaml:3:12: 'venue' must be true or false"),
    ("presence_zones: [toilets, Bad Zone]\n",
     "types.yaml:1:27: zone 'Bad Zone' is not valid"),
    ("typse: {}\n", "types.yaml:1:1: unknown key 'typse' in an event types file; did you "
                    "mean 'types'?"),
])
def test_problems_have_their_place(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_events_of_a_declared_type_are_checked() -> None:
    install(load_event_types_text(TYPES, "types.yaml"))
    good = (b'{"event_id": "e", "customer_id": "c", "type": "table_booked", "ts": '
            b'1741000000000, "venue_id": "v1", "party_size": 4, "vip": true, '
            b'"booked_for": "2025-03-08T19:30:00+01:00", "day": "2025-03-08", "other": 1}')
    event = decode_line(good)
    assert event.type == "table_booked"
    assert event.data == {"venue_id": "v1", "party_size": 4, "vip": True,
                          "booked_for": "2025-03-08T19:30:00+01:00", "day": "2025-03-08"}


@pytest.mark.parametrize(("fields", "reason"), [
    ({"party_size": True}, "'party_size' must be a whole number, got True"),
    ({"party_size": 0}, "'party_size' must be at least 1, got 0"),
    ({"party_size": 1001}, "'party_size' must be at most 1000, got 1001"),
    ({"deposit": "10"}, "'deposit' must be a number, got '10'"),
    ({"deposit": 10}, None),
    ({"vip": "yes"}, "'vip' must be true or false, got 'yes'"),
    ({"day": "2025-02-30"}, "'day' must be a date such as 2026-05-17, got '2025-02-30'"),
    ({"booked_for": "2025-03-08T19:30:00"}, "'booked_for' has no UTC offset"),
    ({"booked_for": None}, "missing 'booked_for' (a datetime field of table_booked events)"),
    ({"venue_id": 3}, "missing or non-string 'venue_id' (table_booked events carry a venue)"),
    ({"area": "terace"}, "got 'terace' (did you mean 'terrace'?)"),
])
def test_a_bad_field_is_named(fields: dict[str, object], reason: str | None) -> None:
    declared = load_event_types_text(TYPES, "types.yaml").types["table_booked"]
    raw = {"venue_id": "v1", "booked_for": "2025-03-08T19:30:00+01:00", **fields}
    if reason is None:
        validate_declared(declared, raw)
        return
    with pytest.raises(ValueError) as caught:
        validate_declared(declared, raw)
    assert reason in str(caught.value)


def test_an_undeclared_type_is_refused_once_more() -> None:
    line = (b'{"event_id": "e", "customer_id": "c", "type": "table_booked", '
            b'"ts": 1741000000000, "venue_id": "v1", "booked_for": "2025-03-08T19:30:00Z"}')
    install(load_event_types_text(TYPES, "types.yaml"))
    assert decode_line(line).type == "table_booked"
    install()
    with pytest.raises(EventError, match="unknown event type 'table_booked'"):
        decode_line(line)


def test_an_empty_declared_type_needs_no_fields() -> None:
    declared = DeclaredType("door_opened", ())
    assert validate_declared(declared, {"anything": 1}) == {}


JOURNEY = """\
journey: j
version: 1
entry:
  event: table_booked
  when: "{condition}"
steps:
  - id: thanks
    actions:
      - send: push
        template: t
"""


def journey_problems(condition: str, types: Path | None) -> list[str]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(JOURNEY.format(condition=condition), "j.yaml",
                          journey_vocabulary(None, types))
    return [str(p) for p in caught.value.problems]


@pytest.fixture()
def types_file(tmp_path: Path) -> Path:
    path = tmp_path / "types.yaml"
    path.write_text(TYPES)
    return path


def test_journeys_use_declared_types(types_file: Path) -> None:
    plan = load_journey_text(
        JOURNEY.format(condition="event.party_size >= 4 and event.area == 'terrace' and "
                                 "venue.venue_id == 'v1'"),
        "j.yaml", journey_vocabulary(None, types_file))
    assert plan.entry.event_type == "table_booked"  # type: ignore[union-attr]


def test_an_undeclared_type_is_refused_in_a_journey() -> None:
    assert journey_problems("event.party_size >= 4", None) == [
        "j.yaml:4:10: unknown event type 'table_booked'; use one of: visit, rating, "
        "voucher_redeemed, booking, profile, message, points, presence, or declare it in an "
        "event types file given with --event-types (at entry.event)"]


def test_an_unknown_declared_field_has_did_you_mean(types_file: Path) -> None:
    assert journey_problems("event.party_sise >= 4", types_file) == [
        "j.yaml:5:16: unknown field 'party_sise' of a table_booked event; did you mean "
        "'party_size'? (at entry.when)"]


def test_a_declared_value_list_is_checked(types_file: Path) -> None:
    found = journey_problems("event.area == 'terace'", types_file)
    assert len(found) == 1
    assert found[0].startswith("j.yaml:5:24: 'terace' is not a table_booked area; did you "
                               "mean 'terrace'?")
    assert str(types_file) in found[0]


def test_a_declared_field_kind_warns_on_text_for_a_number(types_file: Path) -> None:
    from journeys_dsl.loader import check_journeys

    path = types_file.parent / "j.yaml"
    path.write_text(JOURNEY.format(condition="event.party_size == '4'"))
    checked = check_journeys([path], journey_vocabulary(None, types_file))
    assert not checked.problems
    assert any("'event.party_size' is a number" in w.message for w in checked.warnings)


def test_the_schema_lists_declared_types() -> None:
    out = io.StringIO()
    schema_command(out, ("table_booked",))
    schema = json.loads(out.getvalue())
    entry_event = schema["properties"]["entry"]
    assert "table_booked" in json.dumps(entry_event)


def test_ingest_checks_declared_types_once_installed() -> None:
    from connectors.ingest.batch import check_events

    value = {"event_id": "e", "customer_id": "c", "type": "table_booked",
             "ts": "2025-03-03T12:00:00Z", "venue_id": "v1", "party_size": 0,
             "booked_for": "2025-03-08T19:30:00Z"}
    refused = check_events([value], "pos").refused
    assert refused[0].reason.startswith("unknown event type 'table_booked'")
    install(load_event_types_text(TYPES, "types.yaml"))
    assert [r.reason for r in check_events([value], "pos").refused] == [
        "'party_size' must be at least 1, got 0"]
    assert len(check_events([{**value, "party_size": 2}], "pos").accepted) == 1


DATED = """\
journey: table_reminder
version: 1
entry:
  event: table_booked
steps:
  - id: remind
    at: {date: event.booked_for, before: 1d, time: "10:00"}
    actions: [{send: email, template: table_reminder}]
  - id: on_the_day
    at: {date: event.day, time: "09:00"}
    actions: [{send: sms, template: table_today}]
"""


def test_a_declared_datetime_or_date_field_times_steps() -> None:
    from engine.testing import JourneyTester
    from journeys_dsl.dates import event_date_kind
    from journeys_dsl.segments import EMPTY_MODEL
    from journeys_dsl.vocabulary import BUILT_IN

    declared = load_event_types_text(TYPES, "types.yaml")
    plan = load_journey_text(DATED, "j.yaml", BUILT_IN.with_event_types(declared))
    assert event_date_kind("table_booked", "booked_for") is None  # validation leaves none
    install(declared)
    ann = JourneyTester(plan, customer_model=EMPTY_MODEL, start_ms=1741000000000)
    ann.event("profile", timezone="Europe/Berlin")
    ann.event("table_booked", venue_id="v1", booked_for="2025-03-20T19:30:00+01:00",
              day="2025-03-20")
    ann.advance(days=30)
    assert [(c["step"], c["send_at"]) for c in ann.commands] == [
        ("remind", "2025-03-19T09:00:00.000Z"), ("on_the_day", "2025-03-20T08:00:00.000Z")]
    install()
    assert event_date_kind("table_booked", "booked_for") is None  # none left behind


def test_a_declared_field_that_is_no_date_is_named_as_such() -> None:
    from journeys_dsl.vocabulary import BUILT_IN

    vocabulary = BUILT_IN.with_event_types(load_event_types_text(TYPES, "types.yaml"))
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(DATED.replace("event.day", "event.area"), "j.yaml", vocabulary)
    assert [str(p) for p in caught.value.problems] == [
        "j.yaml:10:22: 'event.area' is not a date; dates of a table_booked event: "
        "booked_for, day (at steps[1].at.date)"]


def test_the_schema_accepts_declared_date_fields() -> None:
    import jsonschema  # type: ignore[import-untyped]
    import yaml

    out = io.StringIO()
    schema_command(out, ("table_booked",), ("event.booked_for", "event.day"))
    jsonschema.validate(yaml.safe_load(DATED), json.loads(out.getvalue()))


def test_a_stored_version_on_a_declared_type_compiles_back(redis_client: object,
                                                           key_prefix: str) -> None:
    from engine.core.catalog import Catalog
    from engine.storage.versions import sync_versions
    from journeys_dsl.vocabulary import BUILT_IN

    vocabulary = BUILT_IN.with_event_types(load_event_types_text(TYPES, "types.yaml"))
    first = load_journey_text(DATED, "j.yaml", vocabulary)
    sync_versions(redis_client, key_prefix, Catalog([first]))  # type: ignore[arg-type]
    second = load_journey_text(DATED.replace("version: 1", "version: 2"), "j.yaml",
                               vocabulary)
    catalog = Catalog([second])
    assert sync_versions(redis_client, key_prefix, catalog,  # type: ignore[arg-type]
                         vocabulary) == ["table_reminder@1"]
    assert catalog.plan("table_reminder", 1) is not None


def test_the_console_reads_journeys_on_declared_types(redis_client: object, key_prefix: str,
                                                      tmp_path: Path) -> None:
    from engine.console.live import EngineModels, LiveEngine
    from engine.core.catalog import Catalog
    from engine.storage.versions import sync_versions
    from journeys_dsl.vocabulary import BUILT_IN

    types_file = tmp_path / "types.yaml"
    types_file.write_text(TYPES, encoding="utf-8")
    vocabulary = BUILT_IN.with_event_types(load_event_types(types_file))
    sync_versions(redis_client, key_prefix,  # type: ignore[arg-type]
                  Catalog([load_journey_text(DATED, "j.yaml", vocabulary)]))
    models = EngineModels.load(None, None, None, str(types_file))
    live = LiveEngine(redis_client, key_prefix, 8, models)  # type: ignore[arg-type]
    assert [plan.key for plan in live.plans()] == ["table_reminder@1"]


def test_a_declared_visit_moves_an_entry_timed_by_the_last_visit() -> None:
    from engine.testing import JourneyTester
    from journeys_dsl.segments import EMPTY_MODEL

    install(load_event_types(EXAMPLE))
    winback = load_journey_text("""\
journey: winback
version: 1
entry:
  date: {field: customer.last_visit_at, after: 30d}
steps:
  - id: miss_you
    actions: [{send: email, template: miss_you}]
""", "j.yaml")
    ann = JourneyTester(winback, customer_model=EMPTY_MODEL)
    ann.visit()
    ann.advance(days=20)
    ann.event("ticket_scanned", venue_id="v1", amount=12.0)
    assert ann.state.profile.last_visit_at == ann.now_ms
    ann.advance(days=45)
    assert ann.sent() == [("miss_you", 50.0)]


def test_an_entry_at_a_date_of_a_declared_visit_is_armed() -> None:
    from engine.testing import JourneyTester
    from journeys_dsl.segments import EMPTY_MODEL
    from journeys_dsl.vocabulary import BUILT_IN

    declared = load_event_types_text("""\
types:
  ticket_scanned:
    venue: true
    visit: true
    fields:
      show_at: {type: datetime, required: true}
""", "types.yaml")
    install(declared)
    follow_up = load_journey_text("""\
journey: after_the_show
version: 1
entry:
  event: ticket_scanned
  at: {date: event.show_at, after: 1d, time: "11:00"}
steps:
  - id: thanks
    actions: [{send: email, template: show_thanks}]
""", "j.yaml", BUILT_IN.with_event_types(declared))
    ann = JourneyTester(follow_up, customer_model=EMPTY_MODEL, start_ms=1741000000000)
    ann.event("profile", timezone="Europe/Berlin")
    ann.event("ticket_scanned", venue_id="v1", show_at="2025-03-08T20:00:00+01:00")
    ann.advance(days=10)
    assert [(c["step"], c["send_at"]) for c in ann.commands] == [
        ("thanks", "2025-03-09T10:00:00.000Z")]
