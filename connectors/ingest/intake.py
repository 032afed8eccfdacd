"""One request's events, from checked to stored: the order that makes the guarantees.

1. The events are checked with the engine's decoder (`connectors.ingest.batch`); those it
   would dead-letter are refused, and the others still go on (a POS batch with one bad
   line does not hold back the good ones, and a retry of the whole batch after a fix is
   harmless: the events already stored come back as duplicates).
2. Ids given twice in the request, or stored before by this source (`SeenIds`), are
   duplicates: answered, not stored again.
3. The rest is handed to the sink, which returns only once all of it is durable.
4. Only then are the ids marked as seen; and only then is the request answered.

Two concurrent requests carrying the same new id can both pass step 2 and both store the
event; so can a retry after a crash between steps 3 and 4. The engine applies an event id
once within its duplicate window whatever path it came by, so a customer still sees it once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from connectors.ingest.batch import Accepted, Refused, check_events
from connectors.ingest.seen import SeenIds
from connectors.ingest.sink import EventSink, StoreFailed

__all__ = ["Intake", "Receipt", "Unavailable"]

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Nothing can be promised for the request now (Redis or the sink failed): the client
    sends it again (answered 503)."""


@dataclass(frozen=True)
class Receipt:
    """What became of each event of a request, by its index."""

    source: str
    stored: tuple[Accepted, ...]
    duplicates: tuple[Accepted, ...]
    refused: tuple[Refused, ...]

    def as_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "source": self.source,
            "stored": [{"index": e.index, "event_id": e.event_id} for e in self.stored],
            "duplicates": [{"index": e.index, "event_id": e.event_id}
                           for e in self.duplicates],
            "refused": [{"index": r.index, "reason": r.reason} for r in self.refused],
        }


class Intake:
    """Checks, de-duplicates, stores and marks the events of each request."""

    def __init__(self, sink: EventSink, seen: SeenIds) -> None:
        self.sink = sink
        self.seen = seen

    async def receive(self, source: str, values: Sequence[Any]) -> Receipt:
        """Store the new valid events of a request; raise `Unavailable` when that failed."""
        checked = check_events(list(values), source)
        first: dict[str, Accepted] = {}
        repeated: list[Accepted] = []
        for event in checked.accepted:
            if event.event_id in first:
                repeated.append(event)
            else:
                first[event.event_id] = event
        try:
            before = await self.seen.already_stored(source, list(first))
        except redis.RedisError as exc:
            raise Unavailable(f"cannot read the seen event ids from Redis: {exc}") from None
        fresh = [event for event in first.values() if event.event_id not in before]
        try:
            await self.sink.store(fresh)
        except StoreFailed as exc:
            await self._mark(source, [fresh[i] for i in sorted(exc.stored)])
            raise Unavailable(exc.reason) from None
        await self._mark(source, fresh)
        duplicates = sorted([*repeated, *(e for e in first.values() if e.event_id in before)],
                            key=lambda event: event.index)
        return Receipt(source, tuple(fresh), tuple(duplicates), checked.refused)

    async def _mark(self, source: str, stored: list[Accepted]) -> None:
        """Mark stored events as seen. A failure is logged, not answered: the events are
        stored, and a retry's second copy is dropped by the engine."""
        if not stored:
            return
        try:
            await self.seen.mark_stored(source, [event.event_id for event in stored])
        except redis.RedisError as exc:
            log.warning("%d stored events of source %r not marked as seen (%s); a retry "
                        "stores them again and the engine drops the repeat",
                        len(stored), source, exc)
