"""Viber channel: a text message through the Viber REST API's `send_message`.

The request is a JSON POST with the account's token in `X-Viber-Auth-Token`:

    {"receiver": "<Viber user id or phone digits>", "min_api_version": 1,
     "sender": {"name": "Chain"}, "tracking_data": "<command id>", "type": "text",
     "text": "..."}

The command's `to` is the customer's phone (the channel registry addresses Viber by the
profile's `phone`), sent as international digits; any other value is passed on as a
Viber user id. Viber answers HTTP 200 with `status` 0 and a `message_token` on success
and a non-zero `status` otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connectors.delivery.channels.base import (
    Connector,
    DeliveryResult,
    Message,
    no_recipient,
    recipient,
)
from connectors.delivery.channels.http import HttpReply, TransportError, dumps, post, retry_after
from connectors.delivery.channels.settings import SettingsSection

__all__ = ["CONNECTOR", "DEFAULT_URL", "ViberChannel", "ViberSettings", "classify",
           "read_settings", "receiver"]

DEFAULT_URL = "https://chatapi.viber.com/pa/send_message"
UNREACHABLE = frozenset({5, 6, 11})
"""`receiverNotRegistered`, `receiverNotSubscribed`, `receiverNoSuitableDevice`: this
customer cannot get the message (bounced)."""
RATE_LIMITED = 12
"""`tooManyRequests`: retry later."""
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,}$")
_NOT_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class ViberSettings:
    """The endpoint, the account's token and the sender name customers see."""

    token: str
    sender: str
    url: str = DEFAULT_URL
    timeout_s: float = 10.0
    max_retry_after_s: float = 300.0


def receiver(to: str) -> str:
    """A phone number as international digits (`+49 151 234-5678` as `491512345678`); any
    other value, a Viber user id, unchanged."""
    return _NOT_DIGITS.sub("", to) if _PHONE.match(to) else to


def classify(reply: HttpReply, cap_s: float) -> DeliveryResult:
    """A delivery result from a `send_message` reply (`status`, `status_message`)."""
    body = reply.json()
    body = body if isinstance(body, dict) else {}
    status = body.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    if 200 <= reply.status < 300 and status == 0:
        token = body.get("message_token")
        return DeliveryResult.delivered("sent", str(token) if token is not None else None)
    text = str(body.get("status_message") or f"HTTP {reply.status}")[:200]
    detail = f"Viber {status if status is not None else reply.status}: {text}"
    if status in UNREACHABLE:
        return DeliveryResult.bounced(detail)
    if status == RATE_LIMITED or reply.status == 429:
        return DeliveryResult.failed(detail, retryable=True,
                                     retry_after_s=retry_after(reply.headers, cap_s))
    return DeliveryResult.failed(detail, retryable=reply.status >= 500)


class ViberChannel:
    """Sends the rendered text to the customer's Viber account."""

    name = "viber"

    def __init__(self, settings: ViberSettings) -> None:
        self.settings = settings

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult:
        to = recipient(command)
        address = receiver(to) if to else ""
        if not address:
            return no_recipient("Viber user id or phone number")
        request = {"receiver": address, "min_api_version": 1,
                   "sender": {"name": self.settings.sender},
                   "tracking_data": str(command.get("command_id") or ""),
                   "type": "text", "text": message.text}
        headers = {"X-Viber-Auth-Token": self.settings.token}
        try:
            reply = post(self.settings.url, dumps(request), headers, self.settings.timeout_s)
        except TransportError as exc:
            return DeliveryResult.failed(exc.reason, retryable=True)
        return classify(reply, self.settings.max_retry_after_s)


def read_settings(s: SettingsSection) -> ViberSettings:
    """The `viber` connector's settings from a channel's section of the delivery config."""
    sender = s.text("sender", required=True)
    if len(sender) > 28:
        raise s.error("sender", f"must be at most 28 characters (Viber's limit), not "
                                f"{len(sender)}")
    return ViberSettings(
        token=str(s.secret("token")),
        sender=sender,
        url=s.url("url", DEFAULT_URL),
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        max_retry_after_s=float(s.number("max_retry_after_s", 300.0)),
    )


CONNECTOR = Connector("viber", read_settings, ViberChannel)
