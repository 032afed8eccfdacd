"""The values a text field can take, so that `journeys validate` can check literal text.

`customer.segment == 'regulars'` reads fine but never holds when the segment is called
`regular`. A `Vocabulary` maps fields to their known values: the built-in ones (dayparts,
weekdays, message statuses, event types) and those of a segments file (segments, check
tiers, loyalty tiers). Literal text compared with such a field must be one of its values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from journeys_dsl import fields
from journeys_dsl.plan import DAYPARTS

__all__ = ["BUILT_IN", "Domain", "Vocabulary"]


@dataclass(frozen=True)
class Domain:
    """The values of one field: `noun` names one of them ("segment", "daypart")."""

    noun: str
    values: tuple[str, ...]
    source: str | None = None
    """Where the values are defined (a segments file); None for the engine's own."""
    plural: str = ""
    """The noun for several (default: the noun and an s)."""

    def refusal(self, text: str, did_you_mean: str) -> str:
        """What to say when `text` is not one of the values."""
        where = f" in {self.source}" if self.source else ""
        listed = ", ".join(self.values) if self.values else "none"
        return (f"'{text}' is not a {self.noun}{did_you_mean} "
                f"({self.plural or self.noun + 's'}{where}: {listed})")


@dataclass(frozen=True)
class Vocabulary:
    """Known values by field, as written in conditions (`customer.segment`)."""

    domains: Mapping[str, Domain] = field(default_factory=dict)

    def domain(self, dotted: str) -> Domain | None:
        return self.domains.get(dotted)

    def with_segments(self, *, activity: Iterable[str], check_tiers: Iterable[str],
                      segments: Iterable[str], tiers: Iterable[str],
                      source: str) -> Vocabulary:
        """This vocabulary plus the ids of a segments file."""
        activity, check_tiers = tuple(activity), tuple(check_tiers)
        every_segment = (*activity, *check_tiers, *segments)
        return Vocabulary({
            **self.domains,
            "customer.segment": Domain("segment", activity, source),
            "customer.check_tier": Domain("check tier", check_tiers, source),
            "customer.segments": Domain("segment", every_segment, source),
            "customer.loyalty_tier": Domain("loyalty tier", tuple(tiers), source),
        })


_DAYPART = Domain("daypart", tuple(DAYPARTS))
BUILT_IN = Vocabulary({
    "event.daypart": _DAYPART,
    "customer.usual_daypart": _DAYPART,
    "customer.usual_weekday": Domain("weekday", fields.WEEKDAYS),
    "event.status": Domain("message status", fields.MESSAGE_STATUSES,
                           plural="message statuses"),
    "event.kind": Domain("points kind", fields.POINTS_KINDS),
    "event.type": Domain("event type", fields.EVENT_TYPES),
})
"""The values the engine itself defines."""
