"""Telegram channel: the Bot API's `sendMessage` to the chat id in the command's `to`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.delivery.channels.base import (
    Connector,
    DeliveryResult,
    Message,
    no_recipient,
    recipient,
)
from connectors.delivery.channels.http import HttpReply, TransportError, dumps, post
from connectors.delivery.channels.settings import SettingsSection

DEFAULT_BASE_URL = "https://api.telegram.org"


@dataclass(frozen=True)
class TelegramSettings:
    """The bot token, the API's base URL and how message text is parsed."""

    token: str
    base_url: str = DEFAULT_BASE_URL
    parse_mode: str | None = None
    timeout_s: float = 10.0
    max_retry_after_s: float = 60.0


def classify(reply: HttpReply, cap_s: float) -> DeliveryResult:
    """A delivery result from a Bot API reply (`{"ok": ..., "result"/"error_code": ...}`)."""
    body = reply.json()
    body = body if isinstance(body, dict) else {}
    if body.get("ok") is True and 200 <= reply.status < 300:
        result = body.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return DeliveryResult.delivered("sent", str(message_id) if message_id is not None
                                        else None)
    code = body.get("error_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else reply.status
    description = str(body.get("description") or f"HTTP {reply.status}")[:200]
    detail = f"Telegram {code}: {description}"
    if code == 429:
        parameters = body.get("parameters")
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        retry_after = (min(max(float(wait), 0.0), cap_s)
                       if isinstance(wait, int | float) and not isinstance(wait, bool) else None)
        return DeliveryResult.failed(detail, retryable=True, retry_after_s=retry_after)
    if code == 403 or (code == 400 and "chat not found" in description.lower()):
        return DeliveryResult.bounced(detail)
    return DeliveryResult.failed(detail, retryable=code >= 500)


class TelegramChannel:
    """Sends the rendered text to a Telegram chat through a bot."""

    name = "telegram"

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult:
        chat_id = recipient(command)
        if chat_id is None:
            return no_recipient("Telegram chat id")
        request: dict[str, Any] = {"chat_id": chat_id, "text": message.text}
        if self.settings.parse_mode:
            request["parse_mode"] = self.settings.parse_mode
        url = f"{self.settings.base_url.rstrip('/')}/bot{self.settings.token}/sendMessage"
        try:
            reply = post(url, dumps(request), {}, self.settings.timeout_s,
                         redact=self.settings.token)
        except TransportError as exc:
            return DeliveryResult.failed(exc.reason, retryable=True)
        return classify(reply, self.settings.max_retry_after_s)


def read_settings(s: SettingsSection) -> TelegramSettings:
    """The `telegram` connector's settings from a channel's section of the delivery config."""
    parse_mode = s.text("parse_mode")
    if parse_mode is not None and parse_mode not in ("HTML", "MarkdownV2", "Markdown"):
        raise s.error("parse_mode", f"must be HTML, MarkdownV2 or Markdown, not {parse_mode!r}")
    return TelegramSettings(
        token=str(s.secret("token")),
        base_url=s.url("base_url", DEFAULT_BASE_URL),
        parse_mode=parse_mode,
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        max_retry_after_s=float(s.number("max_retry_after_s", 60.0)),
    )


CONNECTOR = Connector("telegram", read_settings, TelegramChannel)
