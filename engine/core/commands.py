"""Message commands: what the engine asks a connector to send."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from engine.core.timeutil import iso_date_local, iso_utc
from journeys_dsl.channels import channel_spec

if TYPE_CHECKING:
    from engine.core.profile import Profile
    from engine.core.state import CustomerState, Enrollment
    from journeys_dsl.plan import JourneyPlan, SendAction


def encode_command(command: dict[str, Any]) -> bytes:
    """A command as one JSON line."""
    return orjson.dumps(command) + b"\n"


def command_id(customer_id: str, journey_key: str, seq: int, step_id: str, action: int) -> str:
    """The deterministic id of a command: the same enrollment step always yields the same id."""
    text = f"{customer_id}\x1f{journey_key}\x1f{seq}\x1f{step_id}\x1f{action}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def build_command(state: CustomerState, plan: JourneyPlan, enrollment: Enrollment,
                  step_id: str, action_index: int, action: SendAction, at: int,
                  scope: dict[str, Any]) -> dict[str, Any]:
    """A message command for one send action performed at `at` (epoch ms)."""
    profile = state.profile
    customer = scope["customer"]
    variables: dict[str, Any] = {
        "name": profile.name,
        "first_name": customer.get("first_name"),
        "favourite_item": customer.get("favourite_item"),
        "points": profile.points,
    }
    offers: dict[str, Any] = {}
    for offer_id, code in sorted(enrollment.vouchers.items()):
        voucher = state.vouchers.get(code)
        offer = plan.offers.get(offer_id)
        if voucher is None or offer is None:
            continue
        offers[offer_id] = {
            "code": code,
            "description": offer.description,
            "expires_on": iso_date_local(voucher.expires_at, profile.timezone),
            "dayparts": list(offer.dayparts),
        }
    if offers:
        first = offers[next(iter(offers))]
        variables["voucher_code"] = first["code"]
        variables["voucher_expires_on"] = first["expires_on"]
        variables["offers"] = offers
    for name, expression in action.variables:
        variables[name] = _plain(expression.evaluate(scope))
    sent = iso_utc(at)
    return {
        "command_id": command_id(state.customer_id, plan.key, enrollment.seq, step_id,
                                 action_index),
        "customer_id": state.customer_id,
        "journey": plan.journey_id,
        "version": plan.version,
        "step": step_id,
        "channel": action.channel,
        "template": action.template,
        "language": profile.language,
        "timezone": profile.timezone,
        "to": _address(profile, action.channel),
        "vars": variables,
        "send_at": sent,
        "caused_at": sent,
        "entered_at": iso_utc(enrollment.entered_at),
    }


def has_address(profile: Profile, channel: str) -> bool:
    """Whether the profile holds what `channel` needs to reach the customer: the profile
    field the channel registry names for it, or nothing for a channel whose receiver
    finds the customer by id. False for a channel the registry does not know."""
    spec = channel_spec(channel)
    return spec is not None and (spec.address_field is None or bool(_address(profile, channel)))


def _address(profile: Profile, channel: str) -> str | None:
    """Where the channel reaches the customer; None for a channel addressed by customer id."""
    spec = channel_spec(channel)
    field = spec.address_field if spec is not None else None
    return None if field is None else getattr(profile, field)


def _plain(value: Any) -> Any:
    """A JSON-ready value: lazy views (such as customer.segments) become lists of keys."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return list(value)
    return value
