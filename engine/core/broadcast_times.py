"""When a broadcast reaches a customer: its local time in the customer's zone, the day the
shards walk their customers for it, and the timer of a customer first seen after the walk.

The walk itself is in `engine.flow.broadcasts`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from engine.core.state import CustomerState
from engine.core.timeutil import utc_day_start, zone
from journeys_dsl.broadcasts import occurrences
from journeys_dsl.plan import BroadcastEntry, JourneyPlan

HOUR_MS = 3_600_000
EARLIEST_OFFSET_MS = 14 * HOUR_MS
"""The furthest zone ahead of UTC (UTC+14)."""
LATEST_OFFSET_MS = 12 * HOUR_MS
"""The furthest zone behind UTC (UTC-12)."""


def walk_day(local_ms: int) -> int:
    """The UTC day boundary at which shards walk their customers for the local time."""
    return utc_day_start(local_ms - EARLIEST_OFFSET_MS)


def local_to_utc(local_ms: int, tz_name: str | None) -> int:
    """Epoch ms of the naive local time `local_ms` in the zone (UTC when unknown)."""
    naive = datetime.fromtimestamp(local_ms / 1000, UTC).replace(tzinfo=zone(tz_name))
    return int(naive.timestamp() * 1000)


class BroadcastTimes:
    """The occurrences of the current broadcasts, for customers first seen after a walk."""

    def __init__(self, plans: Sequence[JourneyPlan]) -> None:
        self.plans = [p for p in plans if isinstance(p.entry, BroadcastEntry)]
        self._occurrences = {p.journey_id: occurrences(_entry(p)) for p in self.plans}

    def arm_new(self, state: CustomerState, now: int) -> None:
        """Arm a customer the engine sees for the first time at `now` for each broadcast
        whose walk has passed (so it did not see the customer) and whose time in the
        customer's zone is still ahead."""
        for plan in self.plans:
            journey_id = plan.journey_id
            for local in self._occurrences[journey_id]:
                if walk_day(local) > now:
                    break
                due = local_to_utc(local, state.profile.timezone)
                if due > now:
                    state.armed[journey_id] = due
                    state.timer_set(due)
                    break


def _entry(plan: JourneyPlan) -> BroadcastEntry:
    entry = plan.entry
    assert isinstance(entry, BroadcastEntry)
    return entry
