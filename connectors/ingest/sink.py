"""What every durable hand-off offers the request handler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from connectors.ingest.batch import Accepted
from engine.errors import JourneysError

__all__ = ["EventSink", "StoreFailed"]


class StoreFailed(JourneysError):
    """Some events of a call were not stored. `stored` holds the positions (in the call's
    list) of those that were, which the caller may mark as seen."""

    code = "ingest_store_failed"

    def __init__(self, reason: str, stored: frozenset[int] = frozenset()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stored = stored


class EventSink(Protocol):
    """A durable destination of accepted events."""

    description: str
    """Where events go, for the start-up line and /health."""

    async def store(self, events: Sequence[Accepted]) -> None:
        """Return only once every one of `events` is durably stored, in order; raise
        `StoreFailed` otherwise."""
        ...

    async def close(self) -> None:
        """Finish what is under way and release the destination."""
        ...
