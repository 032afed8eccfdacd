"""The demo's response model: customers come back for the messages they get, and only them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.app.generator import ChainConfig, generate_events
from engine.app.responses import (
    ResponseModel,
    ResponseModelError,
    plan_responses,
    response_count,
)

CHAIN = ChainConfig(seed=5, customers=200, venues=3, days=120)
SENT = datetime(2025, 2, 10, 10, 30, tzinfo=UTC)


def command(number: int, customer: str = "c000001", journey: str = "j", *,
            voucher: bool = False, entered: int | None = None,
            sent: datetime = SENT) -> dict[str, Any]:
    variables: dict[str, Any] = {"name": "Ann"}
    if voucher:
        expires = (sent + timedelta(days=14)).date().isoformat()
        variables["offers"] = {"dessert": {"code": f"DESSERT-{number:08d}",
                                           "expires_on": expires, "dayparts": ["lunch"]}}
    entered_at = sent - timedelta(days=1) if entered is None else SENT + timedelta(entered)
    return {"command_id": f"{number:032x}", "customer_id": customer, "journey": journey,
            "send_at": sent.isoformat().replace("+00:00", "Z"),
            "entered_at": entered_at.isoformat(), "vars": variables}


def many(count: int, *, voucher: bool) -> list[dict[str, Any]]:
    """One message per enrollment, so every message can be answered."""
    return [command(n, customer=f"c{n:06d}", voucher=voucher) for n in range(count)]


def test_responses_are_a_fixed_draw_per_seed_and_command() -> None:
    commands = many(500, voucher=False)
    model = ResponseModel()
    first = plan_responses(commands, model, seed=7)
    assert first == plan_responses(list(reversed(commands)), model, seed=7)
    assert first != plan_responses(commands, model, seed=8)


@pytest.mark.parametrize(("voucher", "share"), [(False, 0.12), (True, 0.45)])
def test_the_stated_share_of_messages_brings_customers_back(voucher: bool,
                                                            share: float) -> None:
    count = 4000
    responses = plan_responses(many(count, voucher=voucher), ResponseModel(), seed=7)
    observed = response_count(responses) / count
    assert abs(observed - share) < 0.025, observed  # 3.4 standard errors at n=4000
    delays = [(r.visit_after_ms - r.sent_ms) / 86_400_000
              for listed in responses.values() for r in listed]
    assert 2.6 < sum(delays) / len(delays) < 3.4  # mean 3 days (cut to the voucher's days)
    for listed in responses.values():
        for response in listed:
            assert (response.voucher is not None) is voucher
            if voucher:
                assert response.deadline_ms is not None
                assert response.sent_ms <= response.visit_after_ms < response.deadline_ms
                assert response.dayparts == ("lunch",)


def test_no_message_no_response() -> None:
    assert plan_responses([], ResponseModel(), seed=7) == {}
    off = ResponseModel(visit_share=0.0, voucher_visit_share=0.0)
    assert not off.active
    assert plan_responses(many(300, voucher=True), off, seed=7) == {}


def test_a_customer_answers_one_message_per_enrollment() -> None:
    always = ResponseModel(visit_share=1.0, voucher_visit_share=1.0)
    same = [command(n, sent=SENT + timedelta(days=n), entered=0) for n in range(3)]
    responses = plan_responses(same, always, seed=7)
    assert [r.command_id for r in responses["c000001"]] == [same[0]["command_id"]]
    again = [*same, command(9, entered=30, sent=SENT + timedelta(days=31))]
    assert response_count(plan_responses(again, always, seed=7)) == 2


@pytest.mark.parametrize("bad", [{"visit_share": 1.5}, {"voucher_visit_share": -0.1},
                                 {"mean_delay_days": 0}])
def test_bad_model_values_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ResponseModelError):
        ResponseModel(**bad)


def _by_customer(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[event["customer_id"]].append({k: v for k, v in event.items() if k != "event_id"})
    return grouped


def test_the_generator_adds_the_answering_visits_and_nothing_else() -> None:
    base = list(generate_events(CHAIN))
    first_visit = next(e for e in base if e["type"] == "visit")
    customer = first_visit["customer_id"]
    sent = datetime.fromisoformat(first_visit["ts"]).astimezone(UTC) + timedelta(days=2)
    always = ResponseModel(visit_share=1.0, voucher_visit_share=1.0)
    responses = plan_responses([command(1, customer, voucher=True, sent=sent)], always, 5)
    answered = list(generate_events(CHAIN, responses))
    assert answered == list(generate_events(CHAIN, responses))  # deterministic
    before, after = _by_customer(base), _by_customer(answered)
    assert set(before) == set(after)
    for other in before:  # every other customer's events are exactly as they were
        if other != customer:
            assert before[other] == after[other], other
    added = [e for e in after[customer] if e not in before[customer]]
    visits = [e for e in added if e["type"] == "visit"]
    redeemed = [e for e in added if e["type"] == "voucher_redeemed"]
    assert len(visits) == 1 and redeemed == [
        {"customer_id": customer, "type": "voucher_redeemed", "ts": visits[0]["ts"],
         "voucher_id": "DESSERT-00000001", "venue_id": visits[0]["venue_id"]}]
    moment = datetime.fromisoformat(visits[0]["ts"])
    assert moment.astimezone(UTC) > sent
    assert 12 <= moment.hour <= 14  # lunch, the voucher's only daypart
    assert [e for e in before[customer] if e not in after[customer]] == []
