"""Presence events: decoding, the profile's presence counters, the stored form, the
fields conditions read, and journeys checked against the zones and sources."""

from __future__ import annotations

import pytest

from engine.core.aggregates import Aggregates
from engine.core.declared_events import install
from engine.core.decoding import decode_line, decode_typed
from engine.core.events import EventError, validate_event
from engine.core.presence import stays_within
from engine.core.profile import Profile
from engine.core.scope import CustomerView, ScopeContext
from engine.core.state import CustomerState
from engine.core.state_codec import pack
from engine.core.timeutil import DAY_MS
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.event_types import load_event_types_text
from journeys_dsl.loader import load_journey_text
from journeys_dsl.segments import segments_vocabulary

T0 = 1_741_000_000_000
MINUTE = 60_000


def sighting(ts: int, zone: str | None = "toilets", source: str | None = "wallet_pass",
             venue: str = "westfield", event_id: str | None = None) -> bytes:
    fields = [f'"venue_id": "{venue}"']
    if zone is not None:
        fields.append(f'"zone": "{zone}"')
    if source is not None:
        fields.append(f'"source": "{source}"')
    return (f'{{"event_id": "{event_id or ts}", "customer_id": "c", "type": "presence", '
            f'"ts": {ts}, {", ".join(fields)}}}').encode()


@pytest.fixture(autouse=True)
def _no_declared_types() -> object:
    yield
    install()


def test_presence_decodes_on_the_typed_path() -> None:
    event = decode_typed(sighting(T0), 0)
    assert event is not None and event.type == "presence"
    assert event.data == {"venue_id": "westfield", "zone": "toilets", "source": "wallet_pass"}
    assert decode_line(sighting(T0, zone=None, source=None)).data == {"venue_id": "westfield"}


@pytest.mark.parametrize(("line", "reason"), [
    (sighting(T0, zone="toilet"), "'zone' must be one of entrance, shop_entrance, toilets"),
    (sighting(T0, zone="toilet"), "got 'toilet' (did you mean 'toilets'?)"),
    (sighting(T0, source="wallet"), "(did you mean 'wallet_pass'?)"),
    (b'{"event_id": "e", "customer_id": "c", "type": "presence", "ts": 1741000000000}',
     "missing 'venue_id'"),
    (b'{"event_id": "e", "customer_id": "c", "type": "presense", "ts": 1741000000000}',
     "unknown event type 'presense' (did you mean 'presence'?)"),
])
def test_bad_presence_events_are_refused_with_the_field(line: bytes, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        decode_line(line)
    assert reason in caught.value.reason


def test_an_event_types_file_adds_zones() -> None:
    line = sighting(T0, zone="cloakroom")
    with pytest.raises(EventError):
        decode_line(line)
    install(load_event_types_text("presence_zones: [cloakroom]\n", "types.yaml"))
    assert decode_typed(line, 0) is None  # the typed decoder knows the built-in zones only
    assert decode_line(line).data["zone"] == "cloakroom"


def test_presence_updates_presence_counters_only() -> None:
    profile = Profile()
    for minutes, zone in ((0, "toilets"), (10, "shop_entrance"), (24 * 60, "event_space")):
        profile.apply(decode_line(sighting(T0 + minutes * MINUTE, zone=zone)))
    assert profile.presence == {"n": 3, "f": T0, "l": T0 + DAY_MS, "v": "westfield",
                                "z": "event_space",
                                "r": [T0, T0 + DAY_MS]}  # 10 minutes apart: one stay
    assert profile.visit_count == 0 and profile.total_spend == 0
    assert profile.last_visit_at is None and profile.last_venue_id is None
    assert not profile.daypart_counts and not profile.weekday_counts


def test_a_late_presence_does_not_move_the_last_one() -> None:
    profile = Profile()
    profile.apply(decode_line(sighting(T0 + DAY_MS, zone="toilets")))
    profile.apply(decode_line(sighting(T0, zone="parking")))
    presence = profile.presence
    assert presence is not None
    assert presence["z"] == "toilets" and presence["f"] == T0
    assert presence["r"] == [T0, T0 + DAY_MS]


def test_presences_older_than_90_days_are_dropped() -> None:
    profile = Profile()
    for day in (0, 50, 100, 120):
        profile.apply(decode_line(sighting(T0 + day * DAY_MS)))
    presence = profile.presence
    assert presence is not None
    assert presence["r"] == [T0 + d * DAY_MS for d in (50, 100, 120)]
    assert stays_within(presence, T0 + 120 * DAY_MS, 30) == 2
    assert presence["n"] == 4


def test_conditions_read_the_presence_fields() -> None:
    state = CustomerState("c")
    for day in (0, 40, 80, 95):
        state.profile.apply(decode_line(sighting(T0 + day * DAY_MS)))
    customer = CustomerView(state, T0 + 95 * DAY_MS, ScopeContext(Aggregates()))
    assert customer.get("presence_count") == 4
    assert customer.get("presences_30d") == 2
    assert customer.get("presences_90d") == 3
    assert customer.get("days_since_first_presence") == 95
    assert customer.get("days_since_last_presence") == 0
    assert customer.get("last_zone") == "toilets"
    assert customer.get("first_presence_at") == T0
    assert customer.get("last_presence_venue_id") == "westfield"
    never = CustomerView(CustomerState("d"), T0, ScopeContext(Aggregates()))
    assert never.get("presence_count") == 0 and never.get("presences_30d") == 0
    assert never.get("last_zone") is None and never.get("days_since_last_presence") is None


def test_the_stored_form_stays_small_and_old_states_load() -> None:
    plain = CustomerState("c")
    plain.profile.apply(validate_event({"event_id": "v", "customer_id": "c", "type": "visit",
                                        "ts": T0, "venue_id": "v1", "amount": 20}))
    before = len(plain.to_bytes())
    assert "presence" not in plain.profile.to_dict()  # nothing stored when unused
    state = CustomerState.from_bytes("c", plain.to_bytes())
    for day in range(10):
        state.profile.apply(decode_line(sighting(T0 + day * DAY_MS, event_id=f"p{day}")))
    again = CustomerState.from_bytes("c", state.to_bytes())
    assert again.profile == state.profile
    assert len(state.to_bytes()) - before < 120  # ten presences, times as differences
    old = pack({"p": {"visit_count": 2, "last_visit_at": T0}})  # a state from before
    loaded = CustomerState.from_bytes("c", old)
    assert loaded.profile.presence is None


JOURNEY = """\
journey: j
version: 1
entry:
  event: presence
  when: "{condition}"
steps:
  - id: thanks
    actions:
      - send: push
        template: t
"""


def problem_of(condition: str) -> str:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(JOURNEY.format(condition=condition), "j.yaml",
                          segments_vocabulary())
    problems = caught.value.problems
    assert len(problems) == 1, problems
    return str(problems[0])


def test_journeys_read_presence_fields() -> None:
    plan = load_journey_text(JOURNEY.format(
        condition="event.zone == 'toilets' and event.source == 'beacon' and "
                  "customer.presences_30d >= 2 and customer.last_zone != 'parking'"),
        "j.yaml", segments_vocabulary())
    assert plan.entry.event_type == "presence"  # type: ignore[union-attr]


def test_an_unknown_zone_is_refused_with_its_place() -> None:
    message = problem_of("event.zone == 'toilet'")
    assert message.startswith("j.yaml:5:24: 'toilet' is not a presence zone; "
                              "did you mean 'toilets'?")


def test_an_unknown_source_is_refused_with_its_place() -> None:
    message = problem_of("event.source == 'wallet'")
    assert message.startswith("j.yaml:5:26: 'wallet' is not a presence source; "
                              "did you mean 'wallet_pass'?")


def test_an_unknown_presence_field_is_refused_with_its_place() -> None:
    message = problem_of("event.zon == 'toilets'")
    assert message == ("j.yaml:5:16: unknown field 'zon' of a presence event; did you mean "
                       "'zone'? (at entry.when)")


def test_a_visit_source_stays_free_text() -> None:
    text = JOURNEY.format(condition="event.source == 'opentable'").replace(
        "event: presence", "event: visit")
    load_journey_text(text, "j.yaml", segments_vocabulary())


def test_explain_names_the_presence_field_that_stops_the_entry() -> None:
    from engine.console.explain import Explainer
    from engine.core.catalog import Catalog
    from engine.core.runtime import Effects, JourneyRuntime
    from journeys_dsl.policies import NO_POLICIES

    plan = load_journey_text(JOURNEY.format(
        condition="event.zone == 'toilets' and customer.presences_30d >= 2"), "j.yaml")
    runtime = JourneyRuntime(Catalog([plan]))
    ctx = runtime.context(Aggregates())
    state = CustomerState("c")
    events = [decode_line(sighting(T0 + day * DAY_MS, zone="toilets", event_id=f"p{day}"))
              for day in (0, 1)]
    for event in events[:1]:
        runtime.apply_event(state, event, ctx, Effects())
    result = Explainer(runtime, NO_POLICIES).explain(state, plan, ctx, T0 + 60_000, events[0])
    assert result.verdict == "would_not_enter"
    condition = next(c.condition for c in result.checks if c.name == "entry condition")
    assert condition is not None
    [failing] = condition.failing
    assert [(v.name, v.value) for v in failing.values] == [("customer.presences_30d", 1)]
    runtime.apply_event(state, events[1], ctx, Effects())
    assert state.enrollments["j"].entered_at == T0 + DAY_MS


def test_an_entry_at_a_date_of_the_last_presence_moves_with_each_sighting() -> None:
    from engine.testing import JourneyTester
    from journeys_dsl.segments import EMPTY_MODEL

    missed = load_journey_text("""\
journey: we_miss_you
version: 1
entry:
  date: {field: customer.last_presence_at, after: 30d}
steps:
  - id: miss_you
    actions: [{send: email, template: we_miss_you}]
""", "j.yaml")
    guest = JourneyTester(missed, customer_model=EMPTY_MODEL, start_ms=T0)
    guest.event("presence", T0, venue_id="mall", zone="toilets", source="wallet_pass")
    guest.event("presence", T0 + 10 * DAY_MS, venue_id="mall", zone="entrance")
    guest.advance(days=50)
    assert guest.sent() == [("miss_you", 40.0)]
