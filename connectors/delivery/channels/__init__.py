"""Message channels: each sends a rendered message command and reports a `DeliveryResult`."""

from connectors.delivery.channels.base import STATUSES, Channel, DeliveryResult, Message, Status
from connectors.delivery.channels.push import PushChannel
from connectors.delivery.channels.smtp import SmtpChannel, SmtpSettings
from connectors.delivery.channels.telegram import TelegramChannel, TelegramSettings
from connectors.delivery.channels.webhook import WebhookChannel, WebhookSettings
from connectors.delivery.channels.whatsapp import WhatsAppChannel, WhatsAppSettings

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
