"""Webhook channel: the command and its rendered message as a signed JSON POST.

The receiver checks `X-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body with the
shared secret, and deduplicates on `Idempotency-Key` (the command id).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.delivery.channels.base import Connector, DeliveryResult, Message
from connectors.delivery.channels.http import HttpReply, TransportError, dumps, post, retry_after
from connectors.delivery.channels.settings import SettingsSection

RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class WebhookSettings:
    """Where and how to POST; `secret` signs the body."""

    url: str
    secret: str
    timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    max_retry_after_s: float = 300.0


def sign(secret: str, body: bytes) -> str:
    """The `X-Signature` value for `body`: `sha256=<hex HMAC-SHA256>`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(command: dict[str, Any], message: Message) -> dict[str, Any]:
    """The JSON a webhook receives: the command's fields plus `message`, the rendered parts."""
    return {**command, "message": {"subject": message.subject, "text": message.text,
                                   "html": message.html}}


def classify(reply: HttpReply, cap_s: float) -> DeliveryResult:
    """A delivery result from an HTTP reply of a webhook-style endpoint."""
    status = reply.status
    if 200 <= status < 300:
        body = reply.json()
        provider_id = body.get("id") if isinstance(body, dict) else None
        return DeliveryResult.delivered(f"HTTP {status}",
                                        str(provider_id) if provider_id is not None else None)
    if status in RETRYABLE_STATUSES or status >= 500:
        return DeliveryResult.failed(f"HTTP {status}", retryable=True,
                                     retry_after_s=retry_after(reply.headers, cap_s))
    if status == 410:
        return DeliveryResult.bounced("HTTP 410: the recipient is gone")
    return DeliveryResult.failed(f"HTTP {status}", retryable=False)


class WebhookChannel:
    """POSTs each message command to one URL, signed and with an idempotency key."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult:
        body = dumps(payload(command, message))
        headers = {
            **self.settings.headers,
            "Idempotency-Key": str(command.get("command_id", "")),
            "X-Signature": sign(self.settings.secret, body),
            "X-Timestamp": str(int(self._clock())),
        }
        try:
            reply = post(self.settings.url, body, headers, self.settings.timeout_s)
        except TransportError as exc:
            return DeliveryResult.failed(exc.reason, retryable=True)
        return classify(reply, self.settings.max_retry_after_s)


def read_settings(s: SettingsSection) -> WebhookSettings:
    """The `webhook` connector's settings (also the `push` gateway's) from a channel's
    section of the delivery config."""
    return WebhookSettings(
        url=s.url("url"),
        secret=str(s.secret("secret")),
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        headers=s.headers("headers"),
        max_retry_after_s=float(s.number("max_retry_after_s", 300.0)),
    )


CONNECTOR = Connector("webhook", read_settings, WebhookChannel)
