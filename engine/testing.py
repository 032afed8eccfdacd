"""Test journeys without Redis or a dataflow: one customer, a fake clock, the real runtime.

    from engine.testing import JourneyTester, DAY_MS

    tester = JourneyTester(Path("examples/journeys/02_lost_regular.yaml"))
    for day in (0, 10, 20, 30):
        tester.visit(tester.start_ms + day * DAY_MS)
    tester.advance(days=120)
    assert tester.sent() == [("miss_you", 75.0), ("incentive", 90.0),
                             ("last_reminder", 97.0)]

Times are epoch milliseconds and pass only when the test says so: a 67-day journey runs in
microseconds and gives the same commands every time. The runtime is the one the engine
runs; only the storage (Redis), the dataflow and the day-boundary aggregates of a chain are
left out (`aggregates` starts empty and counts this customer's visits alone).
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

from engine.core.aggregates import Aggregates
from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.runtime import Effects, JourneyRuntime
from engine.core.scope import ScopeContext
from engine.core.state import CustomerState
from engine.core.timeutil import iso_to_ms
from engine.scoring.model import DEFAULT_MODEL, ScoreModel
from journeys_dsl.loader import load_journey_text, load_journeys
from journeys_dsl.plan import JourneyPlan
from journeys_dsl.policies import NO_POLICIES, Policies
from journeys_dsl.segments import CustomerModel, load_segments

__all__ = ["DAY_MS", "DEFAULT_START_MS", "HOUR_MS", "JourneySource", "JourneyTester"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
DEFAULT_START_MS = 1_741_000_000_000
"""2025-03-03T11:06:40Z, a Monday: where a tester's clock starts unless told otherwise."""

JourneySource = JourneyPlan | Path | str
"""A compiled plan, a journey file or folder (a `Path`), or a journey's YAML text (`str`)."""


def _plans(sources: tuple[JourneySource, ...]) -> list[JourneyPlan]:
    plans: list[JourneyPlan] = []
    for number, source in enumerate(sources, start=1):
        if isinstance(source, JourneyPlan):
            plans.append(source)
        elif isinstance(source, Path):
            plans.extend(load_journeys([source]))
        else:
            plans.append(load_journey_text(source, f"journey-{number}.yaml"))
    return plans


class JourneyTester:
    """One customer driven through journeys with a fake clock.

    `event` and `visit` apply an event at `ts` (default: the clock), firing every timer due
    before it first, as the engine does; `advance` moves the clock and fires what came due.
    Invalid events raise `EventError` with the reason the engine would dead-letter them.
    Segments default to the shipped segments file, as `journeys run` reads it.
    """

    def __init__(self, *journeys: JourneySource, customer_id: str = "ann",
                 start_ms: int = DEFAULT_START_MS,
                 customer_model: CustomerModel | None = None,
                 policies: Policies = NO_POLICIES,
                 score_model: ScoreModel = DEFAULT_MODEL,
                 with_addresses: bool = True) -> None:
        if customer_model is None:
            customer_model = load_segments()  # the shipped segments, as `journeys run` uses
        self.runtime = JourneyRuntime(Catalog(_plans(journeys)), score_model, customer_model,
                                      policies)
        self.state = CustomerState(customer_id)
        if with_addresses:
            self.state.profile.email = f"{customer_id}@example.com"
            self.state.profile.phone = "+4930123456"
        self.aggregates = Aggregates()
        self.effects = Effects()
        self.start_ms = start_ms
        self.now_ms = start_ms
        self._ids = itertools.count(1)

    # -- driving ------------------------------------------------------------------------

    def event(self, kind: str, ts: int | None = None, **fields: Any) -> None:
        """Apply an event of type `kind` with `fields` at `ts` (default: now)."""
        at = self.now_ms if ts is None else ts
        raw = {"event_id": f"{self.state.customer_id}-{next(self._ids)}",
               "customer_id": self.state.customer_id, "type": kind, "ts": at, **fields}
        self.runtime.apply_event(self.state, validate_event(raw), self._context(),
                                 self.effects)
        self.now_ms = max(self.now_ms, at)

    def visit(self, ts: int | None = None, amount: float = 30.0, venue_id: str = "v1",
              **fields: Any) -> None:
        """A visit (a table closed) at `ts` (default: now)."""
        self.event("visit", ts, venue_id=venue_id, amount=amount, **fields)

    def advance(self, ts: int | None = None, *, days: float = 0, hours: float = 0,
                minutes: float = 0) -> None:
        """Move the clock to `ts`, or forward by the given time, firing the timers due."""
        step = round(days * DAY_MS + hours * HOUR_MS + minutes * MINUTE_MS)
        until = (self.now_ms if ts is None else ts) + step
        self.runtime.fire_due(self.state, until, self._context(), self.effects)
        self.now_ms = max(self.now_ms, until)

    # -- reading ------------------------------------------------------------------------

    @property
    def commands(self) -> list[dict[str, Any]]:
        """Every message command so far, in the order the runtime emitted them."""
        return self.effects.commands

    @property
    def stats(self) -> Counter[str]:
        """The statistics counters so far (`<journey>@<version>|<counter>`)."""
        return self.effects.stats

    def sent(self) -> list[tuple[str, float]]:
        """(step, days from the start to its send time) of every command so far."""
        return [(command["step"], round((iso_to_ms(command["send_at"]) - self.start_ms)
                                        / DAY_MS, 3))
                for command in self.effects.commands]

    def _context(self) -> ScopeContext:
        return self.runtime.context(self.aggregates)

