"""`deliver` with fake channels: retries, back-off, dead letters, events and idempotency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.delivery.channels import DeliveryResult
from connectors.delivery.service import (
    DeliveryLedger,
    DeliverySummary,
    backoff_delay,
    deliver,
    message_event,
)
from connectors.delivery.templates import RenderedMessage
from engine.core.events import validate_event

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


class FakeRenderer:
    def render(self, command: dict[str, Any]) -> RenderedMessage:
        if command.get("template") == "broken":
            raise ValueError("template 'broken' (en.txt, line 1): 'dish' is undefined")
        return RenderedMessage(None, "Hello", None)


class ScriptedChannel:
    """Answers with `results` in turn (the last one repeats) and counts sends."""

    def __init__(self, *results: DeliveryResult) -> None:
        self.results = list(results)
        self.sent: list[str] = []

    def send(self, command: dict[str, Any], message: Any) -> DeliveryResult:
        self.sent.append(command["command_id"])
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


class ExplodingChannel:
    def send(self, command: dict[str, Any], message: Any) -> DeliveryResult:
        raise RuntimeError("bug with leon@example.com")


OK = DeliveryResult.delivered("ok", "p-1")
DOWN = DeliveryResult.failed("HTTP 503", retryable=True)


def cmd(command_id: str, channel: str = "webhook", **extra: Any) -> dict[str, Any]:
    return {"command_id": command_id, "customer_id": "c1", "journey": "j", "channel": channel,
            "template": "t", "to": None, "send_at": "2025-03-03T10:00:00.000Z", **extra}


@dataclass
class Outcome:
    summary: DeliverySummary
    events: list[dict[str, Any]]
    dead: list[dict[str, Any]]
    sleeps: list[float]


def run(commands: list[Any], channels: dict[str, Any], ledger: DeliveryLedger,
        max_attempts: int = 3) -> Outcome:
    events: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    sleeps: list[float] = []
    summary = deliver(commands, FakeRenderer(), channels, ledger, max_attempts=max_attempts,
                      base_delay_s=1.0, max_delay_s=3.0, sleep=sleeps.append,
                      now=lambda: NOW, on_event=events.append, on_dead_letter=dead.append)
    return Outcome(summary, events, dead, sleeps)


def test_backoff_doubles_up_to_the_cap_with_deterministic_jitter() -> None:
    delays = [backoff_delay("abc", attempt, 1.0, 5.0) for attempt in range(1, 6)]
    assert delays == [backoff_delay("abc", attempt, 1.0, 5.0) for attempt in range(1, 6)]
    for attempt, delay in enumerate(delays, start=1):
        full = min(5.0, 2.0 ** (attempt - 1))
        assert full / 2 <= delay < full
    assert backoff_delay("abc", 1, 1.0, 5.0) != backoff_delay("abd", 1, 1.0, 5.0)


def test_retryable_failures_are_retried_then_delivered(ledger: DeliveryLedger) -> None:
    channel = ScriptedChannel(DOWN, DOWN, OK)
    out = run([cmd("a")], {"webhook": channel}, ledger)
    assert channel.sent == ["a", "a", "a"]
    assert out.sleeps == [backoff_delay("a", 1, 1.0, 3.0), backoff_delay("a", 2, 1.0, 3.0)]
    assert (out.summary.delivered, out.summary.attempts, out.dead) == (1, 3, [])
    entry = ledger.get("a")
    assert entry is not None and (entry.status, entry.attempts, entry.provider_id) == \
        ("delivered", 3, "p-1")


def test_retry_after_longer_than_the_backoff_is_respected(ledger: DeliveryLedger) -> None:
    wait = DeliveryResult.failed("429", retryable=True, retry_after_s=9.0)
    out = run([cmd("a")], {"webhook": ScriptedChannel(wait, OK)}, ledger)
    assert out.sleeps == [9.0]


def test_exhausted_retries_dead_letter_with_reason_and_attempts(ledger: DeliveryLedger) -> None:
    out = run([cmd("a")], {"webhook": ScriptedChannel(DOWN)}, ledger)
    assert len(out.sleeps) == 2
    [dead] = out.dead
    assert (dead["reason"], dead["attempts"], dead["status"]) == \
        ("HTTP 503 (after 3 attempts)", 3, "failed")
    assert dead["command"]["command_id"] == "a"
    assert out.events[0]["status"] == "failed"


def test_non_retryable_failures_and_bounces_are_tried_once(ledger: DeliveryLedger) -> None:
    channels = {"webhook": ScriptedChannel(DeliveryResult.failed("HTTP 400", retryable=False)),
                "telegram": ScriptedChannel(DeliveryResult.bounced("blocked"))}
    out = run([cmd("a"), cmd("b", "telegram")], channels, ledger)
    assert out.sleeps == [] and out.summary.attempts == 2
    assert (out.summary.failed, out.summary.bounced, out.summary.dead_lettered) == (1, 1, 1)
    assert [e["event_id"] for e in out.events] == ["msg-a-failed", "msg-b-bounced"]


def test_render_errors_and_missing_connectors_are_dead_letters_without_sending(
        ledger: DeliveryLedger) -> None:
    channel = ScriptedChannel(OK)
    out = run([cmd("a", template="broken"), cmd("b", "sms")], {"webhook": channel}, ledger)
    assert channel.sent == []
    assert [d["reason"] for d in out.dead] == [
        "cannot render: template 'broken' (en.txt, line 1): 'dish' is undefined",
        "no connector is configured for channel 'sms'"]
    assert [d["attempts"] for d in out.dead] == [0, 0]
    assert out.summary.failed == 2


def test_a_connector_that_raises_does_not_stop_the_run(ledger: DeliveryLedger,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    out = run([cmd("a"), cmd("b", "telegram")],
              {"webhook": ExplodingChannel(), "telegram": ScriptedChannel(OK)}, ledger)
    assert (out.summary.failed, out.summary.delivered) == (1, 1)
    assert out.dead[0]["reason"] == "connector raised RuntimeError"
    assert "leon@example.com" not in caplog.text


def test_delivered_commands_are_skipped_on_replay(ledger: DeliveryLedger) -> None:
    channel = ScriptedChannel(OK)
    first = run([cmd("a"), cmd("b")], {"webhook": channel}, ledger)
    second = run([cmd("a"), cmd("b"), cmd("c")], {"webhook": channel}, ledger)
    assert channel.sent == ["a", "b", "c"]
    assert (first.summary.delivered, second.summary.delivered, second.summary.skipped) == \
        (2, 1, 2)
    assert [e["command_id"] for e in second.events] == ["c"]


def test_invalid_commands_are_dead_lettered_and_future_ones_held(
        ledger: DeliveryLedger) -> None:
    channel = ScriptedChannel(OK)
    out = run(["text", {"customer_id": "c1", "channel": "webhook"},
               cmd("later", send_at="2025-03-04T08:00:00+01:00"), cmd("now")],
              {"webhook": channel}, ledger)
    assert (out.summary.invalid, out.summary.dead_lettered, out.summary.held) == (2, 2, 1)
    assert out.dead[1]["reason"] == "missing or empty 'command_id'"
    assert channel.sent == ["now"] and out.summary.delivered == 1
    held = ledger.get("later")
    assert held is not None and held.status == "held"
    assert out.summary.line().startswith("1 delivered, 0 failed, 0 bounced, 2 dead-lettered, "
                                         "0 skipped as already delivered or claimed, 1 held "
                                         "until send_at")


def test_max_attempts_must_be_positive(ledger: DeliveryLedger) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        run([], {}, ledger, max_attempts=0)


@pytest.mark.parametrize("status", ["delivered", "failed", "bounced"])
def test_message_events_are_valid_engine_events(status: str) -> None:
    event = message_event(cmd("934fbfaabdb7de93da7380379262cdab"), status, NOW)
    assert event["ts"] == "2025-03-03T10:00:00.000Z"
    parsed = validate_event(dict(event))
    assert parsed.type == "message" and parsed.event_id == event["event_id"]
    assert parsed.data == {"status": status, "command_id": event["command_id"],
                           "channel": "webhook", "journey": "j"}
