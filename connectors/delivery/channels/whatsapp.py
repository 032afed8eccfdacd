"""WhatsApp channel: a text message through the WhatsApp Business Cloud API.

Free-form text reaches a customer only inside the 24-hour window after their last
message; outside it the API answers with an error and the command fails.
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

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
UNDELIVERABLE = frozenset({131026})
"""Error codes that mean this recipient cannot get the message: bounced."""
RATE_LIMITED = frozenset({4, 80007, 130429, 131048, 131056})
"""Error codes for throughput and spam-rate limits: retry later."""
TEMPORARY = frozenset({1, 2, 131000, 131016})
"""Error codes for transient service errors."""
_NOT_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class WhatsAppSettings:
    """The sending phone number's id, an access token and the API's address."""

    phone_number_id: str
    token: str
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    timeout_s: float = 10.0
    max_retry_after_s: float = 300.0


def phone_digits(phone: str) -> str:
    """`+49 151 2345-678` as `491512345678`, the form the API takes."""
    return _NOT_DIGITS.sub("", phone)


def classify(reply: HttpReply, cap_s: float) -> DeliveryResult:
    """A delivery result from a Cloud API reply (`messages` or `error`)."""
    body = reply.json()
    body = body if isinstance(body, dict) else {}
    if 200 <= reply.status < 300:
        messages = body.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        message_id = first.get("id") if isinstance(first, dict) else None
        return DeliveryResult.delivered("accepted", str(message_id) if message_id else None)
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    text = str(error.get("message") or f"HTTP {reply.status}")[:200]
    detail = f"WhatsApp {code if code is not None else reply.status}: {text}"
    if code in UNDELIVERABLE:
        return DeliveryResult.bounced(detail)
    if code in RATE_LIMITED or reply.status == 429:
        return DeliveryResult.failed(detail, retryable=True,
                                     retry_after_s=retry_after(reply.headers, cap_s))
    retryable = code in TEMPORARY or reply.status >= 500
    return DeliveryResult.failed(detail, retryable=retryable)


class WhatsAppChannel:
    """Sends the rendered text to the phone number in the command's `to`."""

    name = "whatsapp"

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings

    @property
    def url(self) -> str:
        s = self.settings
        return f"{s.base_url.rstrip('/')}/{s.api_version}/{s.phone_number_id}/messages"

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult:
        phone = recipient(command)
        digits = phone_digits(phone) if phone else ""
        if not digits:
            return no_recipient("phone number")
        request = {"messaging_product": "whatsapp", "to": digits, "type": "text",
                   "text": {"body": message.text}}
        headers = {"Authorization": f"Bearer {self.settings.token}"}
        try:
            reply = post(self.url, dumps(request), headers, self.settings.timeout_s)
        except TransportError as exc:
            return DeliveryResult.failed(exc.reason, retryable=True)
        return classify(reply, self.settings.max_retry_after_s)


def read_settings(s: SettingsSection) -> WhatsAppSettings:
    """The `whatsapp` connector's settings from a channel's section of the delivery config."""
    return WhatsAppSettings(
        phone_number_id=s.text("phone_number_id", required=True),
        token=str(s.secret("token")),
        base_url=s.url("base_url", DEFAULT_BASE_URL),
        api_version=s.text("api_version", DEFAULT_API_VERSION),
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        max_retry_after_s=float(s.number("max_retry_after_s", 300.0)),
    )


CONNECTOR = Connector("whatsapp", read_settings, WhatsAppChannel)
