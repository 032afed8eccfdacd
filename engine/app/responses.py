"""How generated customers respond to the messages the journeys sent them.

The response model is stated and small. A message that reached a customer (a command the
engine emitted) brings the customer back for an extra visit with a fixed probability:
`voucher_visit_share` when the message carries a voucher, `visit_share` otherwise. The visit
comes an exponentially distributed delay after the message (mean `mean_delay_days`), at the
customer's home venue, in a daypart the voucher is valid for; a voucher still valid then is
redeemed at that visit. A customer answers at most one message per enrollment (the later
messages of a journey they came back for would not have been sent). Holdout customers get no
message, so nothing in this model touches them.

Every draw is a hash of the seed and the command id: the same commands always give the same
responses, and drawing them takes nothing from the generator's own random stream, so the
customers' other visits stay as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from random import Random
from typing import Any

from engine.core.timeutil import iso_to_ms
from engine.errors import JourneysError

DAY_MS = 86_400_000
_LATEST_ZONE_MS = 14 * 3_600_000  # local midnight is at most 14 h before UTC midnight


class ResponseModelError(JourneysError, ValueError):
    """A response model value out of range; `field` names it."""

    code = "response_model"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


@dataclass(frozen=True)
class ResponseModel:
    """The effect of a message on the customer who received it."""

    visit_share: float = 0.12
    """Probability that a message without a voucher brings the customer back."""
    voucher_visit_share: float = 0.45
    """Probability that a message carrying a voucher brings the customer back to redeem it
    (the impressed-newcomer journey's reported 45% redemption)."""
    mean_delay_days: float = 3.0
    """Mean days from the message to the visit (exponential, cut to the voucher's validity)."""

    def __post_init__(self) -> None:
        for name in ("visit_share", "voucher_visit_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ResponseModelError(name, f"must be within 0..1, got {value}")
        if not 0.0 < self.mean_delay_days <= 365.0:
            raise ResponseModelError(
                "mean_delay_days", f"must be above 0 and at most 365, got {self.mean_delay_days}")

    @property
    def active(self) -> bool:
        return self.visit_share > 0 or self.voucher_visit_share > 0

    def describe(self) -> str:
        """The model in one sentence, for the demo's banner."""
        return (f"a message brings its customer back with probability "
                f"{self.voucher_visit_share:.0%} when it carries a voucher (redeemed at that "
                f"visit) and {self.visit_share:.0%} otherwise, {self.mean_delay_days:g} days "
                "later on average; holdout customers get no message")


@dataclass(frozen=True, slots=True)
class Response:
    """An extra visit one message causes."""

    command_id: str
    customer_id: str
    sent_ms: int
    visit_after_ms: int
    """The visit's earliest time: the message plus the drawn delay."""
    voucher: str | None = None
    deadline_ms: int | None = None
    """The latest time the voucher is surely valid (before its last day starts anywhere)."""
    dayparts: tuple[str, ...] = ()
    """Dayparts the voucher is valid in; empty for any."""


def plan_responses(commands: Iterable[Mapping[str, Any]], model: ResponseModel,
                   seed: int) -> dict[str, list[Response]]:
    """The responses to `commands`, by customer, in the order of their messages."""
    by_enrollment: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for command in commands:
        key = (command["customer_id"], command["journey"], command.get("entered_at") or "")
        by_enrollment.setdefault(key, []).append(command)
    responses: dict[str, list[Response]] = {}
    for (customer_id, _, _), messages in sorted(by_enrollment.items()):
        messages.sort(key=lambda c: (c["send_at"], c["command_id"]))
        for command in messages:
            response = _respond(command, model, seed)
            if response is not None:
                responses.setdefault(customer_id, []).append(response)
                break
    for listed in responses.values():
        listed.sort(key=lambda r: (r.visit_after_ms, r.command_id))
    return responses


def _respond(command: Mapping[str, Any], model: ResponseModel, seed: int) -> Response | None:
    rng = Random(f"{seed}:{command['command_id']}")
    offers = (command.get("vars") or {}).get("offers") or {}
    offer = next(iter(offers.values()), None) if isinstance(offers, dict) else None
    share = model.voucher_visit_share if offer else model.visit_share
    if rng.random() >= share:
        return None
    sent = iso_to_ms(command["send_at"])
    delay = rng.expovariate(1.0 / (model.mean_delay_days * DAY_MS))
    if offer is None:
        return Response(command["command_id"], command["customer_id"], sent,
                        sent + int(delay))
    deadline = _start_of_day_ms(offer["expires_on"]) - _LATEST_ZONE_MS
    room = max(deadline - sent - DAY_MS, 0)  # leave a day to find a table in the daypart
    return Response(command["command_id"], command["customer_id"], sent,
                    sent + int(min(delay, room)), offer["code"], deadline,
                    tuple(offer.get("dayparts") or ()))


def response_count(responses: Mapping[str, list[Response]]) -> int:
    """How many extra visits the responses add."""
    return sum(len(listed) for listed in responses.values())


def _start_of_day_ms(day: str) -> int:
    moment = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    return int(moment.timestamp()) * 1000
