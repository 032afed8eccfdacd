"""Steps and entries timed by a date, driven through the real dataflow: a booking reminder
the day before at 10:00 local (skipped for a booking made too late), an entry armed by a
booking and moved by a later one, and a yearly entry on a date of the profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Engine, at, event, sends, visit

pytestmark = pytest.mark.integration

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

EVE = """\
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

ANNIVERSARY = """\
journey: member_anniversary
version: 1
entry:
  date: {field: customer.first_visit_at, every: year, before: 7d, time: "11:00"}
re_entry: always
steps:
  - id: gift
    actions: [{points: 200}, {send: email, template: anniversary}]
"""


def engine_for(tmp_path: Path, redis_url: str, key_prefix: str, text: str) -> Engine:
    path = tmp_path / "journey.yaml"
    path.write_text(text)
    return Engine(tmp_path, redis_url, key_prefix, [str(path)], addresses=True)


def filler(day: float) -> dict:
    """A visit by a bystander: moves the event clock so due timers fire."""
    return visit("bystander", at(day), amount=1.0, items=[])


def berlin(customer: str) -> dict:
    return event("profile", customer, at(-1, 9), timezone="Europe/Berlin")


def send_times(commands: list[dict], customer: str) -> list[tuple[str, str]]:
    return sorted((c["step"], c["send_at"]) for c in commands if c["customer_id"] == customer)


def test_a_booking_reminder_the_day_before_at_ten(tmp_path: Path, redis_url: str,
                                                  key_prefix: str) -> None:
    engine = engine_for(tmp_path, redis_url, key_prefix, REMINDER)
    events = [
        berlin("ann"), berlin("bob"), berlin("cat"), berlin("dan"),
        # ann books on Monday for Thursday of next week at 19:30
        event("booking", "ann", at(0, 12), venue_id="v1", party_size=2,
              booked_for=at(10, 19, 30)),
        # bob books at noon for tonight: the reminder's time has passed
        event("booking", "bob", at(0, 12), venue_id="v1", party_size=2,
              booked_for=at(0, 19, 30)),
        # cat's booking has no date; dan's is not a date
        event("booking", "cat", at(0, 12), venue_id="v1", party_size=2),
        event("booking", "dan", at(0, 12), venue_id="v1", party_size=2,
              booked_for="next thursday"),
        filler(5), filler(20),
    ]
    commands = engine.run(events)
    assert send_times(commands, "ann") == [
        ("remind", "2025-03-12T09:00:00.000Z"),   # 10:00 in Berlin the day before
        ("thanks", "2025-03-13T21:30:00.000Z")]   # 3 hours after the booked time
    assert send_times(commands, "bob") == [("thanks", "2025-03-03T21:30:00.000Z")]
    assert send_times(commands, "cat") == send_times(commands, "dan") == []
    assert engine.dead_letters() == []
    stats = engine.stats()
    assert stats["booking_reminder@1|entered"] == 4
    assert stats["booking_reminder@1|sent:remind:email"] == 1
    assert stats["booking_reminder@1|date_passed:remind"] == 1
    assert stats["booking_reminder@1|no_date:remind"] == 2
    assert stats["booking_reminder@1|no_date:thanks"] == 2
    assert stats["booking_reminder@1|completed"] == 4


def test_an_entry_armed_by_a_booking_and_moved_by_the_next(tmp_path: Path, redis_url: str,
                                                           key_prefix: str) -> None:
    engine = engine_for(tmp_path, redis_url, key_prefix, EVE)
    events = [
        berlin("ann"), berlin("bob"),
        event("booking", "ann", at(0, 12), party_size=6, booked_for=at(10, 19, 30)),
        # two days later ann moves the dinner to day 14
        event("booking", "ann", at(2, 12), party_size=6, booked_for=at(14, 20)),
        # bob books a table for six for tonight: too late for the evening before
        event("booking", "bob", at(0, 12), party_size=6, booked_for=at(0, 20)),
        filler(30),
    ]
    commands = engine.run(events)
    assert sends(commands, "ann") == [("eve", 13)]
    assert send_times(commands, "ann") == [("eve", "2025-03-16T17:00:00.000Z")]  # 18:00
    assert sends(commands, "bob") == []
    stats = engine.stats()
    assert stats["booking_eve@1|entered"] == 1
    assert stats["booking_eve@1|entry_date_passed"] == 1


def test_a_yearly_entry_on_a_date_of_the_profile(tmp_path: Path, redis_url: str,
                                                 key_prefix: str) -> None:
    engine = engine_for(tmp_path, redis_url, key_prefix, ANNIVERSARY)
    commands = engine.run([berlin("ann"), visit("ann", at(0, 12)), visit("ann", at(40)),
                           filler(200), filler(400), filler(600), filler(740)])
    # a week before each anniversary of the first visit, at 11:00 in Berlin
    assert send_times(commands, "ann") == [("gift", "2026-02-24T10:00:00.000Z"),
                                           ("gift", "2027-02-24T10:00:00.000Z")]
    stats = engine.stats()
    # ann twice; the bystander, first seen on day 200, once (without an address: no email)
    assert stats["member_anniversary@1|entered"] == 3
    assert stats["member_anniversary@1|points_granted"] == 600
