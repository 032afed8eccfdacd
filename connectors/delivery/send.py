"""One command, once it is due: render it, wait for its channel's rate, send it with
retries, and say what happened. Also what a command must hold to be delivered at all."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connectors.delivery.channels import Channel, DeliveryResult, Message, Status
from connectors.delivery.ledger import iso_ms
from connectors.delivery.rate import TokenBucket
from engine.core.timeutil import iso_to_ms

__all__ = [
    "BACKTEST_ORIGIN",
    "CommandSender",
    "Renderer",
    "RetryPolicy",
    "backoff_delay",
    "command_problem",
    "due_ms",
    "from_backtest",
    "message_event",
]

logger = logging.getLogger(__name__)

BACKTEST_ORIGIN = "backtest"
"""The `origin` of the commands `journeys backtest` writes; refused unless allowed."""


class Renderer(Protocol):
    """Renders a message command; raises `ValueError` (such as `TemplateError`) on failure."""

    def render(self, command: dict[str, Any]) -> Message: ...


def command_problem(command: Any) -> str | None:
    """Why `command` is not a message command that can be reported on, or None."""
    if not isinstance(command, dict):
        return f"a message command must be a JSON object, not {type(command).__name__}"
    for name in ("command_id", "customer_id", "channel"):
        value = command.get(name)
        if not isinstance(value, str) or not value:
            return f"missing or empty '{name}'"
    return None


def from_backtest(command: Mapping[str, Any]) -> bool:
    """Whether a backtest wrote the command (`"origin": "backtest"`)."""
    return command.get("origin") == BACKTEST_ORIGIN


def due_ms(command: Mapping[str, Any]) -> int | None:
    """The command's `send_at` in epoch ms; None when absent or not a time (send now).

    A time without an offset is taken as UTC.
    """
    send_at = command.get("send_at")
    if not isinstance(send_at, str):
        return None
    try:
        return iso_to_ms(send_at)
    except ValueError:
        return None


def backoff_delay(command_id: str, attempt: int, base_delay_s: float,
                  max_delay_s: float) -> float:
    """The wait after failed attempt `attempt` (1-based): doubling, capped, with jitter.

    The jitter is a factor in [0.5, 1) drawn from the command id and attempt, so runs
    are reproducible while different commands spread out.
    """
    digest = hashlib.sha256(f"{command_id}:{attempt}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    delay = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
    return delay * (0.5 + 0.5 * fraction)


def message_event(command: Mapping[str, Any], status: Status, at: datetime) -> dict[str, Any]:
    """The engine's `message` event for a command's outcome."""
    command_id = str(command["command_id"])
    return {
        "event_id": f"msg-{command_id}-{status}",
        "customer_id": str(command["customer_id"]),
        "type": "message",
        "ts": iso_ms(at),
        "status": status,
        "command_id": command_id,
        "channel": command.get("channel"),
        "journey": command.get("journey"),
    }


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retryable send is tried again."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")


class CommandSender:
    """Renders and sends one due command; safe to call from several threads at once.

    `at_most_once` names the channels whose sends a crash must not repeat (`after_crash:
    give_up`); the worker marks their commands attempted before sending them.
    """

    def __init__(self, renderer: Renderer, connectors: Mapping[str, Channel],
                 retry: RetryPolicy, *, rates: Mapping[str, TokenBucket] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 at_most_once: frozenset[str] = frozenset()) -> None:
        self.renderer = renderer
        self.connectors = connectors
        self.retry = retry
        self.rates = dict(rates or {})
        self.sleep = sleep
        self.at_most_once = at_most_once

    def render(self, command: dict[str, Any]) -> tuple[Message | None, DeliveryResult | None]:
        """The rendered message, or the failure that stops the command before any send."""
        channel = command["channel"]
        if channel not in self.connectors:
            return None, DeliveryResult.failed(
                f"no connector is configured for channel '{channel}'", retryable=False)
        try:
            return self.renderer.render(command), None
        except ValueError as exc:
            reason = getattr(exc, "message", None) or str(exc)
            return None, DeliveryResult.failed(f"cannot render: {reason}", retryable=False)

    def send(self, command: dict[str, Any], before_send: Callable[[], None] | None = None
             ) -> tuple[DeliveryResult, int]:
        """Render and send: the outcome and the attempts made. `before_send` runs once,
        after the rate allows the first attempt and just before its network call; if it
        raises, nothing is sent."""
        message, failure = self.render(command)
        if failure is not None or message is None:
            assert failure is not None
            return failure, 0
        return self._send(command, message, before_send)

    def _send(self, command: dict[str, Any], message: Message,
              before_send: Callable[[], None] | None) -> tuple[DeliveryResult, int]:
        command_id = str(command["command_id"])
        connector = self.connectors[command["channel"]]
        bucket = self.rates.get(command["channel"])
        retry = self.retry
        result = DeliveryResult.failed("not attempted", retryable=False)
        for attempt in range(1, retry.max_attempts + 1):
            if bucket is not None:
                bucket.acquire()
            if attempt == 1 and before_send is not None:
                before_send()
            try:
                result = connector.send(command, message)
            except Exception as exc:  # a connector bug must not stop the other commands
                logger.error("command %s: connector raised %s", command_id,
                             type(exc).__name__)
                return DeliveryResult.failed(f"connector raised {type(exc).__name__}",
                                             retryable=False), attempt
            if result.status != "failed" or not result.retryable:
                return result, attempt
            if attempt < retry.max_attempts:
                delay = backoff_delay(command_id, attempt, retry.base_delay_s,
                                      retry.max_delay_s)
                delay = max(delay, result.retry_after_s or 0.0)
                logger.info("command %s: attempt %d failed (%s); retrying in %.2fs",
                            command_id, attempt, result.detail, delay)
                self.sleep(delay)
        return result, retry.max_attempts
