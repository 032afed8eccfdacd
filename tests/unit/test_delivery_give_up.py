"""`after_crash` in the worker, with a real SQLite ledger and fake channels: the attempted
mark comes before the send, and an interrupted `give_up` send is not made again."""

from __future__ import annotations

import time
from typing import Any

from connectors.delivery.channels import DeliveryResult
from connectors.delivery.service import DeliveryLedger, deliver
from connectors.delivery.templates import RenderedMessage
from connectors.delivery.worker import GIVEN_UP


class FakeRenderer:
    def render(self, command: dict[str, Any]) -> RenderedMessage:
        return RenderedMessage(None, "Hello", None)


class MarkReadingChannel:
    """Delivers, and notes whether the ledger held the command's attempted mark at the
    moment of the send."""

    def __init__(self, ledger: DeliveryLedger) -> None:
        self.ledger = ledger
        self.marked: dict[str, bool] = {}

    def send(self, command: dict[str, Any], message: Any) -> DeliveryResult:
        command_id = command["command_id"]
        self.marked[command_id] = command_id in self.ledger.interrupted([command_id])
        return DeliveryResult.delivered("ok")


def cmd(command_id: str, channel: str) -> dict[str, Any]:
    return {"command_id": command_id, "customer_id": f"c-{command_id}", "journey": "j",
            "channel": channel, "template": "t", "to": None}


def run(commands: list[dict[str, Any]], channel: MarkReadingChannel,
        ledger: DeliveryLedger) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    summary = deliver(commands, FakeRenderer(), {"sms": channel, "webhook": channel}, ledger,
                      on_event=events.append, on_dead_letter=dead.append,
                      at_most_once=frozenset({"sms"}))
    return summary, events, dead


def test_a_give_up_send_is_marked_attempted_before_the_network_call(
        ledger: DeliveryLedger) -> None:
    channel = MarkReadingChannel(ledger)
    summary, events, dead = run([cmd("a", "sms"), cmd("b", "webhook")], channel, ledger)
    assert channel.marked == {"a": True, "b": False}  # resend channels write no mark
    assert (summary.delivered, summary.unknown, dead) == (2, 0, [])
    assert ledger.interrupted(["a", "b"]) == set()  # the outcome clears the mark
    assert len(events) == 2


def test_after_a_crash_an_attempted_give_up_send_is_recorded_unknown_not_sent(
        ledger: DeliveryLedger) -> None:
    # what a killed worker leaves: four claims, two of them attempted
    assert ledger.claim(["x", "y", "z", "w"], "killed", 0.01) == {"x", "y", "z", "w"}
    ledger.attempt("x")
    ledger.attempt("z")
    time.sleep(0.05)
    channel = MarkReadingChannel(ledger)

    summary, events, dead = run([cmd("x", "sms"), cmd("y", "sms"), cmd("z", "webhook"),
                                 cmd("w", "webhook")], channel, ledger)

    assert sorted(channel.marked) == ["w", "y", "z"]  # x is not sent again; z is (resend)
    assert (summary.delivered, summary.unknown, summary.dead_lettered) == (3, 1, 1)
    assert "1 unknown after a crash" in summary.line()
    assert [(d["command_id"], d["status"], d["reason"], d["attempts"]) for d in dead] == [
        ("x", "unknown", GIVEN_UP, 0)]
    assert dead[0]["command"] == cmd("x", "sms")
    assert sorted(e["command_id"] for e in events) == ["w", "y", "z"]
    entry = ledger.get("x")
    assert entry is not None and (entry.status, entry.detail) == ("unknown", GIVEN_UP)

    again, _events, dead_again = run([cmd("x", "sms")], channel, ledger)
    assert (again.skipped, again.unknown, dead_again) == (1, 0, [])  # unknown is final
