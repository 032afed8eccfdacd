"""Message channels: each sends a rendered message command and reports a `DeliveryResult`."""

from connectors.channels.base import STATUSES, Channel, DeliveryResult, Message, Status
from connectors.channels.push import PushChannel
from connectors.channels.smtp import SmtpChannel, SmtpSettings
from connectors.channels.telegram import TelegramChannel, TelegramSettings
from connectors.channels.webhook import WebhookChannel, WebhookSettings
from connectors.channels.whatsapp import WhatsAppChannel, WhatsAppSettings

__all__ = [
    "STATUSES",
    "Channel",
    "DeliveryResult",
    "Message",
    "PushChannel",
    "SmtpChannel",
    "SmtpSettings",
    "Status",
    "TelegramChannel",
    "TelegramSettings",
    "WebhookChannel",
    "WebhookSettings",
    "WhatsAppChannel",
    "WhatsAppSettings",
]
