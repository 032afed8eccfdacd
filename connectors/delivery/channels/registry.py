"""The connector types `journeys deliver` can send through, found from the channel registry.

Each channel in `journeys_dsl.channels` names its connector type; the type `telegram` is
the module `connectors/delivery/channels/telegram.py`, whose `CONNECTOR` reads its settings and
builds its sender. Modules are imported when first asked for, so loading a delivery config
imports only the connectors it uses.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from connectors.delivery.channels.base import Connector
from engine.errors import JourneysError
from journeys_dsl.channels import SPECS

__all__ = ["CONNECTOR_TYPES", "UnknownConnectorError", "connector"]

CONNECTOR_TYPES: tuple[str, ...] = tuple(dict.fromkeys(spec.connector for spec in SPECS))
"""Every connector type some channel uses by default; a channel's `type` may name any."""


class UnknownConnectorError(JourneysError, LookupError):
    """A connector type with no module, or whose module defines no `CONNECTOR` for it."""

    code = "unknown_connector"

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"connector type '{kind}': {reason}")
        self.kind = kind
        self.reason = reason


@cache
def connector(kind: str) -> Connector[Any]:
    """The connector of type `kind`, from `connectors.delivery.channels.<kind>.CONNECTOR`."""
    if kind not in CONNECTOR_TYPES:
        raise UnknownConnectorError(kind, f"not one of {', '.join(CONNECTOR_TYPES)}")
    module = importlib.import_module(f"connectors.delivery.channels.{kind}")
    found = getattr(module, "CONNECTOR", None)
    if not isinstance(found, Connector) or found.type != kind:
        raise UnknownConnectorError(kind, f"{module.__name__} defines no CONNECTOR of "
                                          f"type '{kind}'")
    return found
