"""The journeys the engine runs: every known version, and the current one for new entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine.errors import JourneysError
from journeys_dsl.dates import customer_date_events
from journeys_dsl.plan import (
    DateEntry,
    DateFieldEntry,
    EventDateEntry,
    EventEntry,
    InactivityEntry,
    JourneyPlan,
    PAliveEntry,
    SegmentEntry,
)

RECOMMENDATION_FIELD = "recommended_item"
"""The text every journey reading recommendations holds (`recommended_item` or
`recommended_items`)."""


class CatalogError(JourneysError, ValueError):
    """Two different journey sources claim the same journey id and version."""

    code = "catalog_conflict"


class Catalog:
    """Plans indexed for the hot path: by version, by entry event type, time-based entries."""

    def __init__(self, plans: Iterable[JourneyPlan]) -> None:
        self._by_key: dict[tuple[str, int], JourneyPlan] = {}
        self._current_ids: set[str] = set()
        for plan in plans:
            self.add(plan, current_candidate=True)
        self._reindex()

    def add(self, plan: JourneyPlan, *, current_candidate: bool = False) -> None:
        """Register a plan; `current_candidate` plans compete to be the current version."""
        key = (plan.journey_id, plan.version)
        known = self._by_key.get(key)
        if known is not None and known.source_digest != plan.source_digest:
            raise CatalogError(
                f"journey {plan.journey_id!r} version {plan.version} in {plan.source_file} "
                f"differs from the version {plan.version} already known (from "
                f"{known.source_file}); customers in flight stay on the version they entered, "
                f"so give the changed journey a new version number"
            )
        self._by_key[key] = plan
        if current_candidate:
            self._current_ids.add(plan.journey_id)
        self._reindex()

    def _reindex(self) -> None:
        current: dict[str, JourneyPlan] = {}
        for (journey_id, _), plan in sorted(self._by_key.items()):
            if journey_id in self._current_ids:
                current[journey_id] = plan  # sorted: the highest version wins
        self.current: dict[str, JourneyPlan] = current
        self.counts_baskets = any(RECOMMENDATION_FIELD in plan.source_text
                                  for plan in self._by_key.values())
        """Whether a known version reads `customer.recommended_item(s)`: only then does a
        visit count its basket for recommendations (engine.core.baskets)."""
        self.event_entries: dict[str, list[JourneyPlan]] = {}
        self.timed_entries: dict[str, list[JourneyPlan]] = {}
        """Plans with a time-based entry by the event types that arm it: a visit starts
        an inactivity or p(alive) countdown; a visit or a profile change sets a date."""
        for plan in current.values():
            entry = plan.entry
            if isinstance(entry, EventEntry):
                self.event_entries.setdefault(entry.event_type, []).append(plan)
            elif isinstance(entry, InactivityEntry | DateEntry | PAliveEntry):
                arming = ("visit", "profile") if isinstance(entry, DateEntry) else ("visit",)
                for event_type in arming:
                    self.timed_entries.setdefault(event_type, []).append(plan)
            elif isinstance(entry, EventDateEntry | DateFieldEntry):
                for event_type in _date_arming(entry):
                    self.timed_entries.setdefault(event_type, []).append(plan)
        self.segment_entries: dict[str, list[JourneyPlan]] = {}
        """Current plans that enter on a segment change, by segment id (journey id order)."""
        for plan in current.values():
            if isinstance(plan.entry, SegmentEntry):
                self.segment_entries.setdefault(plan.entry.segment, []).append(plan)
        self.condition_exits = any(plan.condition_exits for plan in self._by_key.values())
        """Whether a known version, current or not, has a condition exit."""
        self.triggered = self.condition_exits or bool(self.segment_entries)
        """Whether a journey enters on a segment change or exits on a condition: only
        then does the runtime check them (`engine.core.triggers`)."""

    def plan(self, journey_id: str, version: int) -> JourneyPlan | None:
        return self._by_key.get((journey_id, version))

    def plans(self) -> Sequence[JourneyPlan]:
        return [self._by_key[key] for key in sorted(self._by_key)]


def _date_arming(entry: EventDateEntry | DateFieldEntry) -> tuple[str, ...]:
    """The event types that arm an entry at a date: the event's own type; for a date of the
    profile, a visit or a profile change, and the events that change that date."""
    if isinstance(entry, EventDateEntry):
        return (entry.event_type,)
    extra = [t for t in customer_date_events(entry.date.name) if t not in ("visit", "profile")]
    return ("visit", "profile", *extra)
