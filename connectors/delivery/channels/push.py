"""Push channel: web push through a push gateway's webhook, with its own URL and secret.

The gateway receives the same signed JSON as the webhook channel and looks up the
customer's devices by `customer_id`; HTTP 410 means no subscription is left (bounced).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.delivery.channels.base import Connector, DeliveryResult, Message
from connectors.delivery.channels.webhook import WebhookChannel, WebhookSettings, read_settings


class PushChannel:
    """Sends push messages by POSTing them to the configured push gateway."""

    name = "push"

    def __init__(self, settings: WebhookSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._webhook = WebhookChannel(settings, clock)

    @property
    def settings(self) -> WebhookSettings:
        return self._webhook.settings

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult:
        return self._webhook.send(command, message)


CONNECTOR = Connector("push", read_settings, PushChannel)
"""Push takes the webhook's settings: the gateway's URL, its secret and headers."""
