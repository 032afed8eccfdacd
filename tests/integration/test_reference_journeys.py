"""The ten reference journeys of examples/journeys, driven through the real dataflow.

Each scenario states, per customer, which step sends on which day after the scenario start
(2025-03-03, a Monday, UTC+1), including branch and exit paths.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import EXAMPLES, Engine, at, day_of, event, sends, visit

from engine.core.runtime import stable_fraction
from engine.core.timeutil import DAY_MS
from engine.scoring.model import p_alive, p_alive_crossing_ms

pytestmark = pytest.mark.integration

STEAK = [{"name": "signature steak", "category": "meat", "price": 32.0}]
PASTA = [{"name": "pasta", "category": "mains", "price": 14.0}]


def treated(journey: str, share: float, count: int) -> list[str]:
    """Customer ids that the journey's holdout draw puts in the treated group."""
    names = (f"guest{i}" for i in range(1000))
    return [n for n in names if stable_fraction(n, journey) >= share][:count]


def held_out(journey: str, share: float) -> str:
    return next(f"guest{i}" for i in range(1000) if stable_fraction(f"guest{i}", journey) < share)


def make_engine(tmp_path: Path, redis_url: str, key_prefix: str, filename: str) -> Engine:
    return Engine(tmp_path, redis_url, key_prefix, [str(EXAMPLES / filename)], addresses=True)


def filler(day: float) -> dict:
    """A visit by a bystander: moves the event clock so due timers fire."""
    return visit("bystander", at(day), amount=1.0, items=[])


def test_impressed_newcomer(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "01_impressed_newcomer.yaml")
    ann, bob, cat, dan = treated("impressed_newcomer", 0.1, 4)
    eve = held_out("impressed_newcomer", 0.1)
    # the venue's history: its average check is about 30 (read with up to an hour's lag)
    regulars = [visit(f"r{i}", at(-1 - i % 3, 19), amount=30.0) for i in range(12)]
    events = [*regulars]
    for customer, amount, stars in ((ann, 80.0, 5), (bob, 90.0, 5), (cat, 12.0, 5),
                                    (dan, 85.0, 4), (eve, 95.0, 5)):
        events.append(visit(customer, at(0, 12), amount=amount))
        events.append(event("rating", customer, at(0, 13), stars=stars, venue_id="v1"))
    events.append(filler(3))
    first = engine.run(events)
    code = next(c["vars"]["voucher_code"] for c in first if c["customer_id"] == bob)
    later = engine.run([
        visit(bob, at(3, 12, 30)),  # comes back for lunch and redeems the gift
        event("voucher_redeemed", bob, at(3, 12, 31), voucher_id=code, venue_id="v1"),
        filler(40),
    ])
    commands = first + later
    assert sends(commands, ann) == [("thanks", 1), ("reminder", 7)]  # not redeemed: ends
    assert sends(commands, bob) == [("thanks", 1), ("vip_welcome", 15)]  # redeemed: VIP
    assert sends(commands, cat) == []  # spent below the venue's average
    assert sends(commands, dan) == []  # four stars
    assert sends(commands, eve) == []  # holdout: enters, gets nothing
    stats = engine.stats()
    assert stats["impressed_newcomer@1|entered"] == 2
    assert stats["impressed_newcomer@1|entered_holdout"] == 1
    assert stats["impressed_newcomer@1|goal"] == 1  # bob's second visit
    assert stats["impressed_newcomer@1|voucher_redeemed:dessert"] == 1
    thanks = next(c for c in commands if c["customer_id"] == ann and c["step"] == "thanks")
    assert thanks["vars"]["code"].startswith("DESSERT-")
    assert thanks["vars"]["offers"]["dessert"]["dayparts"] == ["lunch"]


def test_lost_regular(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "02_lost_regular.yaml")
    ann, bob, cat, dan = treated("lost_regular", 0.1, 4)
    events = []
    for customer in (ann, bob, dan):
        events.extend(visit(customer, at(day)) for day in (0, 7, 14, 21))
    events.extend(visit(cat, at(day)) for day in (0, 7, 21))  # only three visits
    events.append(visit(bob, at(70)))  # comes back after the first message
    events.append(filler(82))
    events.sort(key=lambda e: e["ts"])
    first = engine.run(events)
    code = next(c["vars"]["code"] for c in first
                if c["customer_id"] == dan and c["step"] == "incentive")
    later = engine.run([event("voucher_redeemed", dan, at(83), voucher_id=code),
                        filler(120)])
    commands = first + later
    # last visit on day 21, 45 days of silence: day 66, then days 15 and 22 of the journey
    assert sends(commands, ann) == [("miss_you", 66), ("incentive", 81), ("last_reminder", 88)]
    assert sends(commands, bob) == [("miss_you", 66)]  # the visit on day 70 ends it
    assert sends(commands, cat) == []
    assert sends(commands, dan) == [("miss_you", 66), ("incentive", 81)]  # redeemed
    stats = engine.stats()
    assert stats["lost_regular@1|exit:came_back"] == 1
    assert stats["lost_regular@1|goal"] == 1
    assert stats["lost_regular@1|skipped:last_reminder"] == 1


def test_birthday_every_year(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "03_birthday.yaml")
    events = [
        event("profile", "ann", at(0, 9), name="Ann Lee", birthday="1990-03-20",
              timezone="Europe/Berlin"),
        visit("ann", at(0)),
        event("profile", "cat", at(0, 9), birthday="1985-03-25"),  # never visited
        filler(200), filler(380), filler(400),
    ]
    commands = engine.run(events)
    assert sends(commands, "ann") == [("greeting", 14), ("greeting", 379)]
    assert [c["send_at"] for c in commands if c["customer_id"] == "ann"] == [
        "2025-03-17T09:00:00.000Z", "2026-03-17T09:00:00.000Z"]
    assert sends(commands, "cat") == []
    greeting = commands[0]
    assert greeting["vars"]["first_name"] == "Ann"
    assert greeting["vars"]["code"] != next(c for c in commands[1:])["vars"]["code"]


def test_first_visit_anniversary(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "04_first_visit_anniversary.yaml")
    # the first visit is at 09:00, before the 11:00 send time: still a year later
    commands = engine.run([visit("ann", at(0, 9)), visit("ann", at(100)), filler(300),
                           filler(366)])
    assert sends(commands, "ann") == [("celebrate", 365)]
    assert commands[0]["send_at"] == "2026-03-03T11:00:00.000Z"
    assert commands[0]["vars"]["points"] == 500


def test_favourite_dish(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "05_favourite_dish.yaml")
    events = [visit("ann", at(day), items=STEAK) for day in (0, 7, 14, 20, 80)]
    events += [visit("bob", at(day), items=PASTA) for day in (0, 7, 14, 20)]
    events.append(filler(90))
    events.sort(key=lambda e: e["ts"])
    commands = engine.run(events)
    # third visit on day 14 enters (message on day 16); day 20 is inside the 60-day pause
    assert sends(commands, "ann") == [("last_time", 16), ("last_time", 82)]
    assert sends(commands, "bob") == []
    assert commands[0]["vars"]["dish"] == "signature steak"


def test_off_peak_nudge(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "06_off_peak_nudge.yaml")
    events = [event("profile", "ann", at(0, 8), timezone="Europe/Berlin")]
    events += [visit("ann", at(day, 12)) for day in (0, 5, 10)]
    events += [visit("bob", at(day, 20)) for day in (0, 5, 10)]
    events.append(filler(20))
    commands = engine.run(events)
    assert sends(commands, "ann") == [("invite", 11)]
    assert commands[0]["send_at"] == "2025-03-14T16:00:00.000Z"  # 17:00 in Berlin
    assert commands[0]["channel"] == "push"
    assert sends(commands, "bob") == []


def test_vip_invitation_once(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "07_vip_invitation.yaml")
    # the chain's other guests spend 90 to 900 each: ann's 1,100 is in the top 25%
    events = [visit(f"guest{i}", at(i % 5, 19), amount=90.0 * (i + 1)) for i in range(10)]
    events += [visit("ann", at(day), amount=amount)
               for day, amount in ((6, 400.0), (10, 400.0), (20, 300.0), (30, 500.0))]
    events += [visit("bob", at(day), amount=100.0) for day in (6, 10)]
    events.sort(key=lambda e: e["ts"])
    commands = engine.run(events)
    assert sends(commands, "ann") == [("invite", 20)]
    assert sends(commands, "bob") == []
    assert sends(commands, "guest9") == []  # top 25% but below 1,000 of spend


def test_points_expiry(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "08_points_expiry.yaml")
    events = []
    for customer in ("ann", "bob", "cat"):
        events.append(event("points", customer, at(0, 11), kind="earned",
                            amount=150 if customer != "cat" else 50))
        events.append(visit(customer, at(0)))
    events += [visit("bob", at(340)), filler(200), filler(400)]
    events.sort(key=lambda e: e["ts"])
    commands = engine.run(events)
    assert sends(commands, "ann") == [("first_reminder", 330), ("last_call", 360)]
    assert sends(commands, "bob") == [("first_reminder", 330)]  # came back on day 340
    assert sends(commands, "cat") == []  # fewer than 100 points
    assert commands[0]["vars"]["points"] == 150


def test_review_request_waits_for_a_rating(tmp_path: Path, redis_url: str,
                                          key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "09_review_request.yaml")
    events = [
        visit("ann", at(0, 12)), visit("ann", at(10, 12)), visit("ann", at(40, 12)),
        visit("bob", at(0, 12)), event("rating", "bob", at(1), stars=4),
        visit("cat", at(0, 12)), event("rating", "cat", at(0, 13), stars=5),
        filler(50),
    ]
    events.sort(key=lambda e: e["ts"])
    commands = engine.run(events)
    # ask two hours after the visit; no rating within 3 days: a second ask on day 3
    assert sends(commands, "ann") == [("ask", 0), ("second_ask", 3), ("ask", 40),
                                      ("second_ask", 43)]
    assert sends(commands, "bob") == [("ask", 0)]  # rated on day 1
    assert sends(commands, "cat") == []  # rated before the ask
    ask = next(c for c in commands if c["customer_id"] == "ann")
    assert ask["send_at"] == "2025-03-03T13:00:00.000Z"  # 12:00+01:00 plus 2h


def test_at_risk_winback(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, "10_at_risk_winback.yaml")
    ann, bob = treated("at_risk_winback", 0.1, 2)
    events = [visit(c, at(day)) for c in (ann, bob) for day in (0, 7, 14, 21, 28)]
    first_ms = int(day_of(at(0)) * DAY_MS)
    due = p_alive_crossing_ms(5, first_ms, first_ms + 28 * DAY_MS, 0.3)
    assert due is not None
    entry_day = int(due / DAY_MS)
    # the score itself: P(alive) is 0.3 at the entry time and higher a day before
    age = (due - first_ms) / DAY_MS
    assert p_alive(4, 28, age) == pytest.approx(0.3, rel=1e-6)
    assert p_alive(4, 28, age - 1) > 0.3
    events += [visit(bob, at(entry_day + 2)), filler(entry_day + 30)]
    events.sort(key=lambda e: e["ts"])
    commands = engine.run(events)
    assert 40 < entry_day < 120
    assert sends(commands, ann) == [("offer", entry_day)]
    assert sends(commands, bob) == [("offer", entry_day)]
    stats = engine.stats()
    assert stats["at_risk_winback@1|completed"] == 2  # one step: done at entry
    assert stats["at_risk_winback@1|goal"] == 1  # bob came back within 21 days
