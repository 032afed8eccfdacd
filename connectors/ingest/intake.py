"""One request's events, from checked to stored: the order that makes the guarantees.

1. The events are checked with the engine's decoder (`connectors.ingest.batch`); those it
   would dead-letter are refused, and the others still go on (a POS batch with one bad
   line does not hold back the good ones, and a retry of the whole batch after a fix is
   harmless: the events already stored come back as duplicates).
2. Ids given twice in the request, or stored before by this source (`SeenIds`), are
   duplicates: answered, not stored again.
3. The rest is handed to the sink, which returns only once all of it is durable.
4. Only then are the ids marked as seen; and only then is the request answered.

Within one process, a request carrying ids that another request is still storing (a
client that timed out and sent again) waits for that request to finish before step 2, and
then finds them stored. Across several ingest processes, two such requests can both pass
step 2 and both store the event; so can a retry after a crash between steps 3 and 4. The
engine applies an event id once within its duplicate window whatever path it came by, so a
customer still sees it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from connectors.ingest.batch import Accepted, Refused, check_events
from connectors.ingest.seen import SeenIds
from connectors.ingest.sink import EventSink, StoreFailed
from engine.errors import JourneysError

__all__ = ["Intake", "Receipt", "Unavailable"]

log = logging.getLogger(__name__)


class Unavailable(JourneysError):
    """Nothing can be promised for the request now (Redis or the sink failed): the client
    sends it again (answered 503)."""

    code = "ingest_unavailable"


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
        self._in_flight: dict[tuple[str, str], asyncio.Future[None]] = {}
        """(source, event id) of the events requests are storing now, and when they end."""

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
        keys = [(source, event_id) for event_id in first]
        finished = await self._hold(keys)
        try:
            before, fresh = await self._store_new(source, list(first.values()))
        finally:
            for key in keys:
                del self._in_flight[key]
            finished.set_result(None)
        duplicates = sorted([*repeated, *(e for e in first.values() if e.event_id in before)],
                            key=lambda event: event.index)
        return Receipt(source, tuple(fresh), tuple(duplicates), checked.refused)

    async def _hold(self, keys: list[tuple[str, str]]) -> asyncio.Future[None]:
        """Wait until no other request holds any of `keys`, then hold them all (at once, so
        two requests never wait for each other)."""
        while held := {self._in_flight[key] for key in keys if key in self._in_flight}:
            await asyncio.wait(held)
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._in_flight[key] = finished
        return finished

    async def _store_new(self, source: str,
                         events: list[Accepted]) -> tuple[set[str], list[Accepted]]:
        """Store those of `events` not stored before and mark them; the ids stored before,
        and the events stored now."""
        try:
            before = await self.seen.already_stored(source, [e.event_id for e in events])
        except redis.RedisError as exc:
            raise Unavailable(f"cannot read the seen event ids from Redis: {exc}") from None
        fresh = [event for event in events if event.event_id not in before]
        try:
            await self.sink.store(fresh)
        except StoreFailed as exc:
            await self._mark(source, [fresh[i] for i in sorted(exc.stored)])
            raise Unavailable(exc.reason) from None
        await self._mark(source, fresh)
        return before, fresh

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
