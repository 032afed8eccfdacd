"""The defaults of a run's options, in one light module.

The command line, the settings model and the modules that use them read these names from
here, so that `journeys --help` and `journeys validate` start without loading the dataflow,
Redis or the scoring kernels.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BATCH_LINES",
    "DEFAULT_CACHE_CUSTOMERS",
    "DEFAULT_DEDUP_WINDOW_MS",
    "DEFAULT_MAX_AMOUNT",
    "DEFAULT_NATS_EVENTS_STREAM",
    "DEFAULT_NATS_OUTPUTS_STREAM",
    "SUGGESTED_TIMELINE",
    "TIMELINE_KEPT",
]

DEFAULT_CACHE_CUSTOMERS = 100_000
"""Decoded customer states a process keeps in memory after their commit, over all its
shards (about 6.7 KB each on a generated chain); a state not in memory is read from Redis."""
DEFAULT_BATCH_LINES = 8000
"""Lines a source hands on at most per batch. Each shard batch costs a fixed part (a load
and a transaction in Redis, a scoring call, chain-wide aggregates); 8,000 lines over 8
shards process about 1.3x faster than 2,000. A live source hands on what it has, so small
loads still travel in small batches."""
DEFAULT_MAX_AMOUNT = 100_000.0
"""A visit's amount above this is refused: the demo chain's largest check is 324.60."""
DEFAULT_DEDUP_WINDOW_MS = 30 * 86_400_000
"""An event id is refused a second time for 30 days of the customer's event time."""
TIMELINE_KEPT = 0
"""Entries (events and messages, `engine.core.timeline`) kept per customer for the console by
default: none. A timeline is opt-in (`journeys run --timeline N`) because it costs more than
the state itself: with 20 kept, on the demo chain (3,000 customers, 52,058 events) 9.9
entries and 1.7 KB of Redis memory a customer, against 0.9 KB for its state, and about 5%
more engine CPU (docs/console.md)."""
SUGGESTED_TIMELINE = 20
"""Entries a customer's timeline keeps where one is wanted (`journeys demo` keeps these)."""
DEFAULT_NATS_EVENTS_STREAM = "JOURNEYS_EVENTS"
"""The JetStream stream an events subject no stream holds is added to (created if missing)."""
DEFAULT_NATS_OUTPUTS_STREAM = "JOURNEYS_OUTPUTS"
"""The JetStream stream commands and dead-letter subjects no stream holds are added to."""
