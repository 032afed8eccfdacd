"""Reading a running engine's Redis: journeys, counters, customers, timelines, the clock.

Read-only: every call is a read (GET, HGETALL, LRANGE, SCAN, MGET); nothing is written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import redis

from engine.console.errors import ConsoleError
from engine.console.explain import Explainer, JourneyExplanation
from engine.console.timeline import latest_event
from engine.core.aggregates import Aggregates, merge
from engine.core.catalog import Catalog
from engine.core.runtime import JourneyRuntime
from engine.core.scope import ScopeContext
from engine.core.state import CustomerState
from engine.core.state_codec import unpack
from engine.core.timeutil import DAY_MS, utc_day_start
from engine.flow.routing import shard_of
from engine.scoring.model import DEFAULT_MODEL, ScoreModel, load_model
from engine.storage.store import (
    ShardStore,
    passed_boundaries,
    read_stats,
    snapshots_at,
    stored_shard_count,
)
from engine.storage.versions import registry_key
from journeys_dsl.event_types import NO_EVENT_TYPES, EventTypes, load_event_types
from journeys_dsl.loader import load_journey_text
from journeys_dsl.plan import EventEntry, JourneyPlan
from journeys_dsl.policies import Policies, load_policies
from journeys_dsl.segments import CustomerModel, load_segments
from journeys_dsl.vocabulary import Vocabulary

LIVE_CLOCK_SLACK_MS = 2 * DAY_MS
"""An engine whose shards passed a day boundary this close to the wall clock runs on the
wall clock; one further behind replayed history on its event clock."""
LOOKUP_SCAN_LIMIT = 1_000_000
"""Customer states read at most when looking a customer up by email or phone."""
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class EngineModels:
    """The segments, scores and policies the engine runs with (the files given to
    `journeys run`), which conditions and explanations need."""

    customer_model: CustomerModel
    score_model: ScoreModel
    policies: Policies
    event_types: EventTypes = NO_EVENT_TYPES
    """The declared event types the journeys may use."""

    @classmethod
    def load(cls, segments: str | None, scores: str | None,
             policies: str | None, event_types: str | None = None) -> EngineModels:
        return cls(load_segments(segments), load_model(scores) if scores else DEFAULT_MODEL,
                   load_policies(policies), load_event_types(event_types))


class LiveEngine:
    """One engine state in Redis (a key prefix), read on demand."""

    def __init__(self, client: redis.Redis, prefix: str, shards: int,
                 models: EngineModels) -> None:
        self.client = client
        self.prefix = prefix
        self.shards = stored_shard_count(client, prefix) or shards
        self.models = models
        self._catalog_digest = b""
        self._catalog = Catalog([])

    # ------------------------------------------------------------------ journeys
    def catalog(self) -> Catalog:
        """Every journey version the engine has run, compiled from the sources it recorded
        (recompiled only when they change)."""
        records: dict[bytes, bytes] = self.client.hgetall(registry_key(self.prefix))  # type: ignore[assignment]
        digest = b"\0".join(name + b"\0" + raw for name, raw in sorted(records.items()))
        if digest != self._catalog_digest:
            sources = [orjson.loads(raw) for _, raw in sorted(records.items())]
            vocabulary = Vocabulary().with_event_types(self.models.event_types)
            self._catalog = Catalog(load_journey_text(source["text"], source["file"],
                                                      vocabulary) for source in sources)
            self._catalog_digest = digest
        return self._catalog

    def plans(self) -> list[JourneyPlan]:
        return sorted(self.catalog().plans(), key=lambda p: (p.journey_id, p.version))

    def stats(self) -> Counter[str]:
        return read_stats(self.client, self.prefix, self.shards)

    # ------------------------------------------------------------------ customers
    def store_of(self, customer_id: str) -> ShardStore:
        return ShardStore(self.client, self.prefix, shard_of(customer_id, self.shards))

    def state(self, customer_id: str) -> CustomerState | None:
        """The customer's stored state, or None when the engine has none."""
        raw = self.client.get(self.store_of(customer_id).customer_key(customer_id))
        return CustomerState.from_bytes(customer_id, raw) if raw else None  # type: ignore[arg-type]

    def timeline(self, customer_id: str) -> list[bytes]:
        """The customer's kept event and command lines, oldest first."""
        key = self.store_of(customer_id).timeline_key(customer_id)
        return list(self.client.lrange(key, 0, -1))  # type: ignore[arg-type]

    def find(self, query: str) -> list[str]:
        """Customer ids matching `query`: the id itself, else an exact email (any case) or
        phone (digits compared) in the profiles, read shard by shard."""
        query = query.strip()
        if not query:
            return []
        if self.client.exists(self.store_of(query).customer_key(query)):
            return [query]
        email = query.lower() if "@" in query else None
        digits = "".join(ch for ch in query if ch.isdigit()) if email is None else ""
        if email is None and len(digits) < 6:
            return []
        found: list[str] = []
        read = 0
        for shard in range(self.shards):
            store = ShardStore(self.client, self.prefix, shard)
            prefix = store.customer_key("")
            keys: list[bytes] = []
            for key in self.client.scan_iter(match=prefix + "*", count=LOOKUP_BATCH):
                keys.append(key)
                if len(keys) >= LOOKUP_BATCH:
                    found.extend(self._matching(keys, prefix, email, digits))
                    read += len(keys)
                    keys = []
                if read >= LOOKUP_SCAN_LIMIT:
                    raise ConsoleError(f"looked through {read:,} customers without finishing; "
                                       "look the customer up by id")
            found.extend(self._matching(keys, prefix, email, digits))
        return sorted(found)

    def _matching(self, keys: list[bytes], prefix: str, email: str | None,
                  digits: str) -> list[str]:
        if not keys:
            return []
        out = []
        for key, raw in zip(keys, self.client.mget(keys), strict=True):
            if not isinstance(raw, bytes) or not raw:
                continue
            profile = unpack(raw)[0].get("p", {})  # the profile alone, not the whole state
            if email is not None:
                found = str(profile.get("email") or "").lower() == email
            else:
                phone = str(profile.get("phone") or "")
                found = bool(phone) and "".join(c for c in phone if c.isdigit()) == digits
            if found:
                out.append(key.decode()[len(prefix):])
        return out

    # ------------------------------------------------------------------ time and scope
    def clock(self, state: CustomerState | None = None) -> int:
        """The engine's time now (epoch ms): the wall clock for an engine that keeps up
        with it; for one that replayed history, the later of the last day boundary its
        shards passed and the customer's last event."""
        wall = int(time.time() * 1000)
        passed = [day for day in passed_boundaries(self.client, self.prefix,
                                                   range(self.shards)).values()
                  if day is not None]
        if not passed or wall - max(passed) <= LIVE_CLOCK_SLACK_MS:
            return wall
        latest = max(state.seen.values(), default=0) if state is not None else 0
        return max(max(passed), latest)

    def context(self, now: int) -> ScopeContext:
        """What conditions read beyond the customer at `now`: the chain's aggregates as of
        the start of its day (every shard's snapshot, summed), as the engine reads them."""
        day = utc_day_start(now)
        blobs = snapshots_at(self.client, self.prefix, range(self.shards), day).values()
        aggregates = Aggregates({}, merge(orjson.loads(b) for b in blobs if b is not None))
        return ScopeContext(aggregates, self.models.customer_model, self.models.score_model)

    def runtime(self) -> JourneyRuntime:
        models = self.models
        return JourneyRuntime(self.catalog(), models.score_model, models.customer_model,
                              models.policies)

    # ------------------------------------------------------------------ explanations
    def explain(self, customer_id: str, journey_ids: Sequence[str] = (),
                at: int | None = None) -> tuple[CustomerState, list[JourneyExplanation]]:
        """The customer's state and an explanation for the current version of each journey
        (or of those in `journey_ids`, in that order) at `at` (default: the engine's
        clock)."""
        state = self.state(customer_id)
        if state is None:
            raise ConsoleError(f"no customer {customer_id!r} under prefix {self.prefix!r}")
        plans = self.current_plans()
        if journey_ids:
            by_id = {plan.journey_id: plan for plan in plans}
            unknown = [journey_id for journey_id in journey_ids if journey_id not in by_id]
            if unknown:
                known = ", ".join(by_id) or "none"
                raise ConsoleError(f"no journey {unknown[0]!r} in the engine (known: {known})")
            plans = [by_id[journey_id] for journey_id in dict.fromkeys(journey_ids)]
        now = at if at is not None else self.clock(state)
        ctx = self.context(now)
        explainer = Explainer(self.runtime(), self.models.policies)
        lines = self.timeline(customer_id)
        explanations = []
        for plan in plans:
            entry = plan.entry
            sample = latest_event(customer_id, lines, entry.event_type) \
                if isinstance(entry, EventEntry) else None
            explanations.append(explainer.explain(state, plan, ctx, now, sample))
        return state, explanations

    def current_plans(self) -> list[JourneyPlan]:
        """The newest version of each journey: the one new entries go to."""
        current = self.catalog().current
        return [current[journey_id] for journey_id in sorted(current)]
