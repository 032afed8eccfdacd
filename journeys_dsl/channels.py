"""The channel registry: every message channel the product knows, described once.

    spec = channel_spec("viber")  # ChannelSpec(name="viber", address_field="phone", ...)
    CHANNELS                      # ("email", "sms", "whatsapp", "telegram", "viber", ...)

Everything that lists or knows channels reads this module: the journey language's
validation and JSON Schema, the policies file, the engine's address and consent checks,
the template store and checker, the delivery config and the reports. It holds pure data
and imports nothing beyond the standard library, so the engine and the journey language
import it without pulling in the connectors' HTTP or SMTP code.

How `journeys deliver` sends a channel lives in connectors: `connector` names a module
`connectors/delivery/channels/<connector>.py` whose `CONNECTOR` reads the channel's delivery
settings and builds its sender (see `connectors.delivery.channels.registry`). A new channel is an
entry in `SPECS` below plus that module (docs/extending.md walks through one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CHANNELS",
    "PARTS",
    "SPECS",
    "AfterCrash",
    "ChannelSpec",
    "channel_spec",
]

PARTS: tuple[str, ...] = ("subject.txt", "txt", "html")
"""The template parts a channel may need: `ROOT/<template>/<language>.<part>`."""

AfterCrash = Literal["resend", "give_up"]


@dataclass(frozen=True)
class ChannelSpec:
    """One message channel: how the engine addresses it and what delivering it needs."""

    name: str
    """What a journey writes after `send:` and what a command carries in `channel`."""
    address_field: str | None
    """The profile field holding the address a command carries in `to`; None when the
    receiver finds the customer by `customer_id` (a push gateway knows the devices)."""
    required_parts: tuple[str, ...]
    """Template parts the channel needs, in every language a template is written in."""
    optional_parts: tuple[str, ...] = ()
    """Template parts the channel renders when they exist."""
    connector: str = "webhook"
    """The connector type `journeys deliver` uses unless the channel's delivery settings
    name another with `type`: the module `connectors/delivery/channels/<connector>.py`."""
    after_crash: AfterCrash = "give_up"
    """The default for a send a crash interrupted: `resend` where the receiver can drop a
    repeat by its key, `give_up` where a second send is a second message."""
    needs_consent: bool = True
    """Whether the consent policy and `unsubscribed` events apply to the channel."""
    colour: str = "#475569"
    """The channel's colour in report charts."""


SPECS: tuple[ChannelSpec, ...] = (
    # email carries a stable Message-ID, so mail systems drop a resent duplicate
    ChannelSpec("email", "email", ("subject.txt", "txt"), ("html",), connector="smtp",
                after_crash="resend", colour="#2563eb"),
    # SMS goes through the provider's webhook; providers take no idempotency key
    ChannelSpec("sms", "phone", ("txt",), connector="webhook", colour="#16a34a"),
    ChannelSpec("whatsapp", "phone", ("txt",), connector="whatsapp", colour="#0d9488"),
    ChannelSpec("telegram", "telegram_chat_id", ("txt",), connector="telegram",
                colour="#0284c7"),
    # by phone through a Business Messages gateway; the public bot API wants a Viber user
    # id, which the profile does not hold yet (docs/delivery.md)
    ChannelSpec("viber", "phone", ("txt",), connector="viber", colour="#7360f2"),
    ChannelSpec("push", None, ("txt",), connector="push", colour="#9333ea"),
    # the receiver gets the whole command and deduplicates on its Idempotency-Key
    ChannelSpec("webhook", None, (), ("txt",), connector="webhook", after_crash="resend",
                colour="#64748b"),
)
"""Every channel, in the order messages and listings name them."""

CHANNELS: tuple[str, ...] = tuple(spec.name for spec in SPECS)
"""The channel names, in registry order."""

_BY_NAME: Mapping[str, ChannelSpec] = MappingProxyType({spec.name: spec for spec in SPECS})


def channel_spec(name: str) -> ChannelSpec | None:
    """The spec of the channel called `name`, or None when there is no such channel."""
    return _BY_NAME.get(name)
