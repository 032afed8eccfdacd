"""Email channel: multipart/alternative mail (text and HTML) over SMTP.

The `Message-ID` is derived from the command id, so a resent command carries the same id
and mail systems can spot the duplicate; `X-Command-Id` names the command.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Literal

from connectors.delivery.channels.base import (
    Connector,
    DeliveryResult,
    Message,
    no_recipient,
    recipient,
)
from connectors.delivery.channels.settings import SettingsSection

Security = Literal["none", "starttls", "ssl"]
SECURITY_MODES: tuple[Security, ...] = ("none", "starttls", "ssl")
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")
_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server, its security, the optional login and the sender."""

    host: str
    sender: str
    port: int = 25
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    reply_to: str | None = None
    timeout_s: float = 30.0
    message_id_domain: str | None = None


def message_id(command_id: str, domain: str) -> str:
    """`<command_id@domain>`: one Message-ID per command."""
    return f"<{_ID_SAFE.sub('-', command_id)}@{domain}>"


def _domain(settings: SmtpSettings) -> str:
    if settings.message_id_domain:
        return settings.message_id_domain
    address = parseaddr(settings.sender)[1]
    return address.rpartition("@")[2] or "localhost"


def build_email(command: dict[str, Any], message: Message, to: str,
                settings: SmtpSettings) -> EmailMessage:
    """The email for a command: text, plus an HTML alternative where the message has one."""
    command_id = str(command.get("command_id", ""))
    email = EmailMessage()
    email["Subject"] = message.subject or ""
    email["From"] = settings.sender
    email["To"] = to
    if settings.reply_to:
        email["Reply-To"] = settings.reply_to
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(command_id, _domain(settings))
    email["X-Command-Id"] = command_id
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


def _redacted(text: bytes | str) -> str:
    """A server's reply without email addresses in it, shortened."""
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return _ADDRESS.sub("<address>", " ".join(decoded.split()))[:200]


def _by_code(code: int, what: str, text: bytes | str) -> DeliveryResult:
    detail = f"SMTP {code} {what}: {_redacted(text)}"
    if 500 <= code < 600:
        return DeliveryResult.bounced(detail)
    return DeliveryResult.failed(detail, retryable=True)


def classify(exc: Exception) -> DeliveryResult:
    """A delivery result from an exception smtplib raised while sending."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        return _by_code(code, "recipient refused", text)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryResult.failed(f"SMTP {exc.smtp_code} login refused: "
                                     f"{_redacted(exc.smtp_error)}", retryable=False)
    if isinstance(exc, smtplib.SMTPConnectError):
        return DeliveryResult.failed(f"SMTP {exc.smtp_code} at connect: "
                                     f"{_redacted(exc.smtp_error)}", retryable=True)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _by_code(exc.smtp_code, "sender refused", exc.smtp_error)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, "refused", exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryResult.failed(f"SMTP server lacks a feature: {exc}", retryable=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryResult.failed("SMTP server disconnected", retryable=True)
    if isinstance(exc, smtplib.SMTPException):
        return DeliveryResult.failed(f"SMTP error: {_redacted(str(exc))}", retryable=True)
    return DeliveryResult.failed(f"SMTP connection failed: {type(exc).__name__}: "
                                 f"{_redacted(str(exc))}", retryable=True)


class SmtpChannel:
    """Sends emails through one SMTP server, one connection per message."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult:
        to = recipient(command)
        if to is None or "@" not in to:
            return no_recipient("email address")
        email = build_email(command, message, to, self.settings)
        envelope_from = parseaddr(self.settings.sender)[1] or self.settings.sender
        try:
            client = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            return classify(exc)
        try:
            client.send_message(email, from_addr=envelope_from, to_addrs=[to])
        except (smtplib.SMTPException, OSError) as exc:
            return classify(exc)
        finally:
            _quit(client)
        return DeliveryResult.delivered("accepted by the SMTP server", email["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if s.username is not None:
                client.login(s.username, s.password or "")
        except BaseException:
            client.close()
            raise
        return client


def _quit(client: smtplib.SMTP) -> None:
    """Says goodbye; the message is already accepted, so errors here do not matter."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def read_settings(s: SettingsSection) -> SmtpSettings:
    """The `smtp` connector's settings from a channel's section of the delivery config."""
    username = s.text("username")
    password = s.secret("password", required=False)
    if password is not None and username is None:
        raise s.error("username", "is required when password_env is set")
    chosen = s.choice("security", SECURITY_MODES, "none")
    security = next(mode for mode in SECURITY_MODES if mode == chosen)
    default_port = {"none": 25, "starttls": 587, "ssl": 465}[security]
    return SmtpSettings(
        host=s.text("host", required=True),
        port=int(s.number("port", default_port, minimum=1, integer=True)),
        security=security,
        username=username,
        password=password,
        sender=s.text("from", required=True),
        reply_to=s.text("reply_to"),
        timeout_s=float(s.number("timeout_s", 30.0, minimum=0.1)),
        message_id_domain=s.text("message_id_domain"),
    )


CONNECTOR = Connector("smtp", read_settings, SmtpChannel)
