"""The values a text field can take, so that `journeys validate` can check literal text.

`customer.segment == 'regulars'` reads fine but never holds when the segment is called
`regular`. A `Vocabulary` maps fields to their known values: the built-in ones (dayparts,
weekdays, message statuses, event types) and those of a segments file (segments, check
tiers, loyalty tiers). Literal text compared with such a field must be one of its values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from journeys_dsl import dates, fields
from journeys_dsl.dates import DateKind
from journeys_dsl.plan import DAYPARTS

if TYPE_CHECKING:
    from journeys_dsl.event_types import EventTypes

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
    event_fields: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: fields.EVENT_FIELDS)
    """Fields of each event type: the built-in ones and those of an event types file."""
    typed_domains: Mapping[str, Domain] = field(default_factory=dict)
    """Known values of one event type's field, by `type:event.field`."""
    typed_kinds: Mapping[str, str] = field(default_factory=dict)
    """"number" or "text" of one event type's field, by `type:event.field`."""
    event_dates: Mapping[str, Mapping[str, DateKind]] = field(
        default_factory=lambda: dates.EVENT_DATES)
    """Date fields of each event type (`at: {date: event.x}`), built-in and declared."""

    def domain(self, dotted: str, event_type: str | None = None) -> Domain | None:
        if event_type is not None and self.typed_domains:
            typed = self.typed_domains.get(f"{event_type}:{dotted}")
            if typed is not None:
                return typed
        return self.domains.get(dotted)

    def kind(self, dotted: str, event_type: str | None = None) -> str | None:
        """Whether a field holds a number or text; None: either, or a list."""
        if event_type is not None and self.typed_kinds:
            typed = self.typed_kinds.get(f"{event_type}:{dotted}")
            if typed is not None:
                return typed
        return fields.FIELD_KINDS.get(dotted)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.event_fields)

    def with_event_types(self, event_types: EventTypes) -> Vocabulary:
        """This vocabulary plus the types and zones of an event types file."""
        if not event_types.types and not event_types.presence_zones:
            return self
        from journeys_dsl.event_types import field_kinds

        source = event_types.source_file or "the event types file"
        zones = (*fields.PRESENCE_ZONES, *event_types.presence_zones)
        event_fields = event_types.event_fields()
        typed = {f"{name}:event.{one.name}": Domain(f"{name} {one.name}", one.values, source)
                 for name, kind in event_types.types.items() for one in kind.fields
                 if one.values}
        return replace(self, domains={
            **self.domains,
            "event.type": Domain("event type", tuple(event_fields)),
            "event.zone": Domain("presence zone", zones, source),
            "customer.last_zone": Domain("presence zone", zones, source),
        }, event_fields=event_fields, typed_domains={**self.typed_domains, **typed},
            typed_kinds={**self.typed_kinds, **field_kinds(event_types)},
            event_dates={**self.event_dates, **event_types.date_fields()})

    def with_segments(self, *, activity: Iterable[str], check_tiers: Iterable[str],
                      segments: Iterable[str], tiers: Iterable[str],
                      source: str) -> Vocabulary:
        """This vocabulary plus the ids of a segments file."""
        activity, check_tiers = tuple(activity), tuple(check_tiers)
        every_segment = (*activity, *check_tiers, *segments)
        return replace(self, domains={
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
    "event.zone": Domain("presence zone", fields.PRESENCE_ZONES),
    "customer.last_zone": Domain("presence zone", fields.PRESENCE_ZONES),
}, typed_domains={
    "presence:event.source": Domain("presence source", fields.PRESENCE_SOURCES),
})
"""The values the engine itself defines."""
