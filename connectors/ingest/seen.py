"""Event ids already stored, per source, in Redis: what makes a retried request harmless.

An id is marked only after the sink confirmed its event stored, and kept for the engine's
duplicate window (`engine.run_defaults.DEFAULT_DEDUP_WINDOW_MS`, 30 days). The keys of one
source share a hash tag, so a request's ids are read in one MGET on Redis Cluster too.

The gap: a crash (or a Redis error) after the sink stored a request's events and before
they were marked leaves them unmarked, and a retry stores them a second time. The second
copy never reaches a customer: the engine applies an event id once within the same window,
whatever path it came by.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from engine.run_defaults import DEFAULT_DEDUP_WINDOW_MS

__all__ = ["SEEN_FOR_S", "SeenIds"]

SEEN_FOR_S = DEFAULT_DEDUP_WINDOW_MS // 1000


class SeenIds:
    """Reads and marks the stored event ids of each source."""

    def __init__(self, client: aioredis.Redis, prefix: str, seen_for_s: int = SEEN_FOR_S) -> None:
        self._client = client
        self._prefix = prefix
        self._seen_for_s = seen_for_s

    def key(self, source: str, event_id: str) -> str:
        """The key marking `event_id` stored for `source`."""
        return f"{self._prefix}:ingest:{{{source}}}:seen:{event_id}"

    async def already_stored(self, source: str, event_ids: Sequence[str]) -> set[str]:
        """Those of `event_ids` stored before, by this service, within the window."""
        if not event_ids:
            return set()
        found = await self._client.mget([self.key(source, i) for i in event_ids])
        return {event_id for event_id, value in zip(event_ids, found, strict=True)
                if value is not None}

    async def mark_stored(self, source: str, event_ids: Iterable[str]) -> None:
        """Remember `event_ids` as stored, for the window."""
        async with self._client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.set(self.key(source, event_id), b"1", ex=self._seen_for_s)
            await pipe.execute()

    async def ping(self) -> bool:
        """Whether Redis answers."""
        return bool(await self._client.ping())

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()
