"""Identity resolution: alias events, the identity map and the merge of two customers.

An alias event (`type: "alias"`) says that identifiers (a loyalty card, a phone number, an
email address, a booking platform's id, another customer id) belong to its customer, the
survivor. From then on an event whose `customer_id` is one of them is applied to the
survivor, and a customer the engine already kept under one of them is merged into it.

This module is what routers need: decoding an alias event and the map they resolve ids
with. The merge rule and the transfer record a merged customer's state travels in are in
`engine.core.merge`; the shard processor's side (the two-phase hand-off) is
`engine.flow.identity`; docs/identity.md has the guarantees and their limits.
"""

from __future__ import annotations

from typing import Any, get_args

from engine.core.event_types import IdentifierKind
from engine.core.events import MAX_ID_LENGTH, Event, EventError, _identifier, parse_timestamp

ALIAS = "alias"
"""The event type that links identifiers to a customer."""
HANDOFF = "~handoff"
"""The record the router sends to a merged customer's shard (never in the input: input
types cannot start with ~)."""
IDENTIFIER_KINDS: tuple[str, ...] = get_args(IdentifierKind)
MAX_IDENTIFIERS = 16


# ---------------------------------------------------------------------- decoding
def validate_alias(raw: dict[str, Any], position: int = 0) -> Event:
    """An alias event the typed decoder refused, checked field by field for the reason."""
    event_id = _identifier(raw, "event_id")
    customer_id = _identifier(raw, "customer_id")
    ts, offset = parse_timestamp(raw.get("ts"))
    identifiers = raw.get("identifiers")
    if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
        raise EventError(f"'identifiers' must be a list of 1 to {MAX_IDENTIFIERS} objects "
                         f"such as {{\"kind\": \"phone\", \"value\": \"+4930123456\"}}")
    pairs: list[list[str]] = []
    for index, item in enumerate(identifiers):
        if not isinstance(item, dict):
            raise EventError(f"'identifiers[{index}]' must be an object with 'kind' and "
                             f"'value'")
        kind = item.get("kind")
        if kind not in IDENTIFIER_KINDS:
            raise EventError(f"'identifiers[{index}].kind' must be one of "
                             f"{', '.join(IDENTIFIER_KINDS)}, got {kind!r:.60}")
        value = item.get("value")
        if not isinstance(value, str) or not value:
            raise EventError(f"'identifiers[{index}].value' must be a non-empty string "
                             f"(quote numbers)")
        if len(value) > MAX_ID_LENGTH:
            raise EventError(f"'identifiers[{index}].value' is longer than {MAX_ID_LENGTH} "
                             f"characters")
        pairs.append([kind, value])
    return Event(event_id, customer_id, ALIAS, ts, {"identifiers": pairs}, position, offset)


def finish_alias(data: dict[str, Any]) -> None:
    """The typed decoder's identifiers as [kind, value] pairs, as `validate_alias` gives."""
    data["identifiers"] = [[item.kind, item.value] for item in data["identifiers"]]


# ---------------------------------------------------------------------- the map
class IdentityMap:
    """Identifier -> the customer its events are applied to, kept flat (every key maps to
    a survivor that is itself linked to no one), so resolving an id is one dict lookup.
    Empty until the first link: the router then skips the lookup."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}

    def canonical(self, customer_id: str) -> str:
        return self.links.get(customer_id, customer_id)

    def link(self, identifier: str, survivor: str) -> bool:
        """Link `identifier`, and every id linked to it, to `survivor`'s customer; False
        when they are one customer already, or `identifier` is linked to another one."""
        survivor = self.canonical(survivor)
        if identifier in self.links or identifier == survivor:
            return False
        moved = self._members.pop(identifier, [])
        for member in moved:
            self.links[member] = survivor
        self.links[identifier] = survivor
        self._members.setdefault(survivor, []).extend([*moved, identifier])
        return True


def transfer_id(alias_event_id: str, identifier: str, survivor: str) -> str:
    """The id of the hand-off of `identifier`'s state to `survivor` by an alias event:
    fixed by its inputs, so a replay writes and looks for the same record, and two
    partitions that resolve the event's customer differently name two transfers."""
    return f"{alias_event_id}\x1f{identifier}\x1f{survivor}"
