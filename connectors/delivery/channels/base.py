"""What every channel shares: the result of a send and the interfaces a channel works with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from connectors.delivery.channels.settings import SettingsSection

Status = Literal["delivered", "failed", "bounced"]
STATUSES: tuple[Status, ...] = ("delivered", "failed", "bounced")


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one send attempt.

    `detail` says what happened without personal data; `retryable` is True where a later
    attempt may succeed; `retry_after_s` is the wait the provider asked for, if any.
    """

    status: Status
    detail: str
    retryable: bool = False
    provider_id: str | None = None
    retry_after_s: float | None = None

    @classmethod
    def delivered(cls, detail: str, provider_id: str | None = None) -> DeliveryResult:
        return cls("delivered", detail, False, provider_id)

    @classmethod
    def bounced(cls, detail: str) -> DeliveryResult:
        return cls("bounced", detail, False)

    @classmethod
    def failed(cls, detail: str, *, retryable: bool,
               retry_after_s: float | None = None) -> DeliveryResult:
        return cls("failed", detail, retryable, None, retry_after_s)


class Message(Protocol):
    """A rendered message, as `connectors.delivery.templates.RenderedMessage` is."""

    @property
    def subject(self) -> str | None: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str | None: ...


class Channel(Protocol):
    """Sends one rendered message command; expected failures come back as results."""

    def send(self, command: dict[str, Any], message: Message) -> DeliveryResult: ...


S = TypeVar("S")


@dataclass(frozen=True)
class Connector(Generic[S]):
    """How `journeys deliver` sends through one connector type.

    `read_settings` reads and checks the type's settings from a channel's section of the
    delivery config (raising `DeliveryConfigError` naming the key); `build` makes the
    sender from them. A module `connectors/delivery/channels/<type>.py` defines one as `CONNECTOR`.
    """

    type: str
    read_settings: Callable[[SettingsSection], S]
    build: Callable[[S], Channel]


def recipient(command: dict[str, Any]) -> str | None:
    """The command's `to` as stripped text, or None when it is missing or empty."""
    value = command.get("to")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def no_recipient(what: str) -> DeliveryResult:
    """The result for a command without the recipient its channel needs."""
    return DeliveryResult.failed(f"the command has no {what} ('to' is empty)", retryable=False)
