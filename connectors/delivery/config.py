"""The delivery config file: which connector serves each channel, and retry settings.

    retry: {max_attempts: 5, base_delay_s: 0.5, max_delay_s: 60}
    channels:
      email: {host: smtp.example.com, port: 587, security: starttls,
              username: mailer, password_env: SMTP_PASSWORD, from: "Chain <hi@example.com>"}
      telegram: {token_env: TELEGRAM_TOKEN, rate_per_second: 25, burst: 30}

YAML or JSON. Secrets are never written in the file: `*_env` keys name environment
variables that hold them. `rate_per_second` and `burst` cap a channel's sends (see
`connectors.delivery.rate`). `after_crash` says what a restarted worker does with a send
its predecessor began but did not record: `resend` (at least once) or `give_up` (at most
once); `DEFAULT_AFTER_CRASH` gives each channel's default. Every error names the file and
the key.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.delivery.channels.base import Channel
from connectors.delivery.channels.registry import CONNECTOR_TYPES, connector
from connectors.delivery.channels.settings import (
    DeliveryConfigError,
    SettingsSection,
    settings_section,
)
from journeys_dsl.channels import CHANNELS, SPECS
from journeys_dsl.parser import did_you_mean

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

DEFAULT_TYPES: Mapping[str, str] = {spec.name: spec.connector for spec in SPECS}
"""The connector type a channel uses unless its section names another with `type`."""
AFTER_CRASH: tuple[str, ...] = ("resend", "give_up")
"""`resend`: a send interrupted by a crash is made again (at least once); `give_up`: it is
not, and is recorded `unknown` (at most once)."""
DEFAULT_AFTER_CRASH: Mapping[str, str] = {spec.name: spec.after_crash for spec in SPECS}
"""Each channel's default, from the channel registry (`journeys_dsl.channels`): resend
where the receiver can drop the repeat (webhooks carry `Idempotency-Key`, emails a stable
`Message-ID`); give up where a second send is a second message on the customer's phone
(the SMS, chat and push providers take no idempotency key)."""


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
    settings: Any
    """What the connector type's `read_settings` returned (`SmtpSettings` for smtp...)."""
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


def _rate(s: SettingsSection) -> RateLimit | None:
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
    s = settings_section(data, "retry", path, {})
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
            hint = did_you_mean(str(name), CHANNELS)
            raise DeliveryConfigError(where, key, f"unknown channel{hint}; use "
                                                  f"{', '.join(CHANNELS)}")
        s = settings_section(body, key, where, env)
        kind = s.choice("type", CONNECTOR_TYPES, DEFAULT_TYPES[name])
        settings = connector(kind).read_settings(s)
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
    return {name: connector(channel.type).build(channel.settings)
            for name, channel in config.channels.items()}
