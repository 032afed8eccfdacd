"""The delivery config file: which connector serves each channel, and retry settings.

    retry: {max_attempts: 5, base_delay_s: 0.5, max_delay_s: 60}
    channels:
      email: {host: smtp.example.com, port: 587, security: starttls,
              username: mailer, password_env: SMTP_PASSWORD, from: "Chain <hi@example.com>"}
      telegram: {token_env: TELEGRAM_TOKEN, rate_per_second: 25, burst: 30}

YAML or JSON. Secrets are never written in the file: `*_env` keys name environment
variables that hold them. `rate_per_second` and `burst` cap a channel's sends (see
`connectors.delivery_rate`). `after_crash` says what a restarted worker does with a send
its predecessor began but did not record: `resend` (at least once) or `give_up` (at most
once); `DEFAULT_AFTER_CRASH` gives each channel's default. Every error names the file and
the key.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.channels import (
    Channel,
    PushChannel,
    SmtpChannel,
    SmtpSettings,
    TelegramChannel,
    TelegramSettings,
    WebhookChannel,
    WebhookSettings,
    WhatsAppChannel,
    WhatsAppSettings,
)
from connectors.channels.smtp import SECURITY_MODES
from connectors.channels.telegram import DEFAULT_BASE_URL as TELEGRAM_URL
from connectors.channels.whatsapp import DEFAULT_API_VERSION
from connectors.channels.whatsapp import DEFAULT_BASE_URL as WHATSAPP_URL
from engine.errors import JourneysError

__all__ = [
    "AFTER_CRASH",
    "CHANNELS",
    "CONNECTOR_TYPES",
    "DEFAULT_AFTER_CRASH",
    "ChannelConfig",
    "DeliveryConfig",
    "DeliveryConfigError",
    "RateLimit",
    "RetrySettings",
    "build_connectors",
    "load_delivery_config",
    "parse_delivery_config",
]

CHANNELS: tuple[str, ...] = ("email", "sms", "whatsapp", "telegram", "push", "webhook")
DEFAULT_TYPES: Mapping[str, str] = {
    "email": "smtp", "sms": "webhook", "whatsapp": "whatsapp", "telegram": "telegram",
    "push": "push", "webhook": "webhook",
}
"""The connector type a channel uses unless its section names another with `type`."""
CONNECTOR_TYPES: tuple[str, ...] = ("smtp", "webhook", "push", "telegram", "whatsapp")
AFTER_CRASH: tuple[str, ...] = ("resend", "give_up")
"""`resend`: a send interrupted by a crash is made again (at least once); `give_up`: it is
not, and is recorded `unknown` (at most once)."""
DEFAULT_AFTER_CRASH: Mapping[str, str] = {
    "webhook": "resend", "email": "resend",
    "sms": "give_up", "whatsapp": "give_up", "telegram": "give_up", "push": "give_up",
}
"""Resend where the receiver can drop the repeat (webhooks carry `Idempotency-Key`, emails a
stable `Message-ID`); give up where a second send is a second message on the customer's
phone (SMS, WhatsApp, Telegram and push providers take no idempotency key)."""
INLINE_SECRETS = ("password", "token", "secret")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeliveryConfigError(JourneysError, ValueError):
    """A delivery config that cannot be used; names the file and the key."""

    code = "delivery_config"

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason, file=self.path)
        self.key = key
        """The setting, such as `channels.email.host` (not a customer key)."""

    def context(self) -> str:
        return self.path


@dataclass(frozen=True)
class RetrySettings:
    """How often and how patiently a retryable send is tried again."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0


@dataclass(frozen=True)
class RateLimit:
    """At most `burst` sends at once, then `rate_per_second` sends a second."""

    rate_per_second: float
    burst: int


@dataclass(frozen=True)
class ChannelConfig:
    """One channel's connector type, its settings (secrets resolved) and its send rate."""

    type: str
    settings: SmtpSettings | WebhookSettings | TelegramSettings | WhatsAppSettings
    rate: RateLimit | None = None
    """None: sends as fast as the worker's concurrency allows."""
    after_crash: str = "resend"
    """`resend` or `give_up`: see `AFTER_CRASH`."""


@dataclass(frozen=True)
class DeliveryConfig:
    """A loaded delivery config."""

    path: str
    channels: Mapping[str, ChannelConfig]
    retry: RetrySettings

    def at_most_once(self) -> frozenset[str]:
        """The channels whose interrupted sends are given up rather than made again."""
        return frozenset(name for name, channel in self.channels.items()
                         if channel.after_crash == "give_up")


class _Section:
    """Typed reads from one mapping of the file, with errors naming the full key."""

    def __init__(self, data: Mapping[str, Any], key: str, path: str,
                 environ: Mapping[str, str]) -> None:
        self.data = data
        self.key = key
        self.path = path
        self.environ = environ
        self.used: set[str] = set()

    def error(self, name: str, reason: str) -> DeliveryConfigError:
        return DeliveryConfigError(self.path, f"{self.key}.{name}" if name else self.key, reason)

    def _get(self, name: str, required: bool) -> Any:
        self.used.add(name)
        value = self.data.get(name)
        if value is None and required:
            raise self.error(name, "is required")
        return value

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be non-empty text, not {value!r}")
        return value.strip()

    def number(self, name: str, default: float, *, minimum: float = 0.0,
               integer: bool = False) -> Any:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                integer and not isinstance(value, int)):
            kind = "a whole number" if integer else "a number"
            raise self.error(name, f"must be {kind}, not {value!r}")
        if not math.isfinite(value) or value < minimum:
            raise self.error(name, f"must be at least {minimum:g}, not {value!r}")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in options:
            raise self.error(name, f"must be one of {', '.join(options)}, not {value!r}")
        return str(value)

    def url(self, name: str, default: str | None = None) -> str:
        value = self.text(name, default, required=default is None)
        if not re.match(r"^https?://[^\s/]+", value):
            raise self.error(name, f"must be an http:// or https:// URL, not {value!r}")
        return str(value)

    def secret(self, name: str, *, required: bool = True) -> str | None:
        """The value of the environment variable named by `<name>_env`."""
        if name in self.data:
            self.used.add(name)
            raise self.error(name, f"secrets are not written in the file; put it in an "
                                   f"environment variable and name that with {name}_env")
        variable = self.text(f"{name}_env", required=required)
        if variable is None:
            return None
        if not _ENV_NAME.match(variable):
            raise self.error(f"{name}_env", f"{variable!r} is not an environment variable name")
        value = self.environ.get(variable)
        if not value:
            raise self.error(f"{name}_env", f"environment variable {variable} is not set")
        return value

    def headers(self, name: str) -> dict[str, str]:
        value = self._get(name, False)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()):
            raise self.error(name, "must map header names to text")
        return {k: str(v) for k, v in value.items()}

    def check_unknown(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise self.error(str(name), "is not a known setting")


def _section(data: Any, key: str, path: str, environ: Mapping[str, str]) -> _Section:
    if not isinstance(data, Mapping):
        raise DeliveryConfigError(path, key, f"must be a mapping, not {type(data).__name__}")
    return _Section(data, key, path, environ)


def _smtp(s: _Section) -> SmtpSettings:
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


def _webhook(s: _Section) -> WebhookSettings:
    return WebhookSettings(
        url=s.url("url"),
        secret=str(s.secret("secret")),
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        headers=s.headers("headers"),
        max_retry_after_s=float(s.number("max_retry_after_s", 300.0)),
    )


def _telegram(s: _Section) -> TelegramSettings:
    parse_mode = s.text("parse_mode")
    if parse_mode is not None and parse_mode not in ("HTML", "MarkdownV2", "Markdown"):
        raise s.error("parse_mode", f"must be HTML, MarkdownV2 or Markdown, not {parse_mode!r}")
    return TelegramSettings(
        token=str(s.secret("token")),
        base_url=s.url("base_url", TELEGRAM_URL),
        parse_mode=parse_mode,
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        max_retry_after_s=float(s.number("max_retry_after_s", 60.0)),
    )


def _whatsapp(s: _Section) -> WhatsAppSettings:
    return WhatsAppSettings(
        phone_number_id=s.text("phone_number_id", required=True),
        token=str(s.secret("token")),
        base_url=s.url("base_url", WHATSAPP_URL),
        api_version=s.text("api_version", DEFAULT_API_VERSION),
        timeout_s=float(s.number("timeout_s", 10.0, minimum=0.1)),
        max_retry_after_s=float(s.number("max_retry_after_s", 300.0)),
    )


_PARSERS: Mapping[str, Callable[[_Section], Any]] = {
    "smtp": _smtp, "webhook": _webhook, "push": _webhook, "telegram": _telegram,
    "whatsapp": _whatsapp,
}


def _rate(s: _Section) -> RateLimit | None:
    """The channel's `rate_per_second` and `burst` (default: one second's worth)."""
    rate = s.number("rate_per_second", 0.0)
    burst = s.number("burst", 0, integer=True)
    if not rate:
        if burst:
            raise s.error("burst", "needs rate_per_second as well")
        if "rate_per_second" in s.data:
            raise s.error("rate_per_second", "must be above 0 (leave it out for no limit)")
        return None
    if "burst" in s.data and burst < 1:
        raise s.error("burst", f"must be at least 1, not {burst!r}")
    return RateLimit(float(rate), int(burst) if burst else max(1, math.ceil(rate)))


def _retry(data: Any, path: str) -> RetrySettings:
    if data is None:
        return RetrySettings()
    s = _section(data, "retry", path, {})
    retry = RetrySettings(
        max_attempts=int(s.number("max_attempts", 5, minimum=1, integer=True)),
        base_delay_s=float(s.number("base_delay_s", 0.5)),
        max_delay_s=float(s.number("max_delay_s", 60.0)),
    )
    s.check_unknown()
    return retry


def parse_delivery_config(data: Any, path: Path | str,
                          environ: Mapping[str, str] | None = None) -> DeliveryConfig:
    """A `DeliveryConfig` from the decoded file; `environ` defaults to `os.environ`."""
    where = str(path)
    env = os.environ if environ is None else environ
    if not isinstance(data, Mapping):
        raise DeliveryConfigError(where, "", "the file must hold a mapping with 'channels'")
    unknown = [key for key in data if key not in ("channels", "retry")]
    if unknown:
        raise DeliveryConfigError(where, str(unknown[0]),
                                  "is not a known section; use channels and retry")
    sections = data.get("channels")
    if not isinstance(sections, Mapping) or not sections:
        raise DeliveryConfigError(where, "channels", "must map at least one channel to "
                                                     "its settings")
    channels: dict[str, ChannelConfig] = {}
    for name, body in sections.items():
        key = f"channels.{name}"
        if name not in CHANNELS:
            raise DeliveryConfigError(where, key, f"unknown channel; use {', '.join(CHANNELS)}")
        s = _section(body, key, where, env)
        kind = s.choice("type", CONNECTOR_TYPES, DEFAULT_TYPES[name])
        settings = _PARSERS[kind](s)
        rate = _rate(s)
        after_crash = s.choice("after_crash", AFTER_CRASH, DEFAULT_AFTER_CRASH[name])
        s.check_unknown()
        channels[name] = ChannelConfig(kind, settings, rate, after_crash)
    return DeliveryConfig(where, channels, _retry(data.get("retry"), where))


def load_delivery_config(path: Path | str,
                         environ: Mapping[str, str] | None = None) -> DeliveryConfig:
    """Read and check a delivery config file (`.json` as JSON, anything else as YAML)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeliveryConfigError(file, "", f"cannot read the file: {exc}") from exc
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DeliveryConfigError(file, "", f"does not parse: {exc}") from exc
    return parse_delivery_config(data, file, environ)


def build_connectors(config: DeliveryConfig) -> dict[str, Channel]:
    """One connector per configured channel."""
    connectors: dict[str, Channel] = {}
    for name, channel in config.channels.items():
        settings = channel.settings
        if isinstance(settings, SmtpSettings):
            connectors[name] = SmtpChannel(settings)
        elif isinstance(settings, TelegramSettings):
            connectors[name] = TelegramChannel(settings)
        elif isinstance(settings, WhatsAppSettings):
            connectors[name] = WhatsAppChannel(settings)
        elif channel.type == "push":
            connectors[name] = PushChannel(settings)
        else:
            connectors[name] = WebhookChannel(settings)
    return connectors
