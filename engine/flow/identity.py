"""The shard processor's side of identity resolution: a two-phase hand-off of a merged
customer's state from its shard to the survivor's, exactly once under kill -9.

An alias event that links customer A to survivor B reaches two shards (the router sends
both, see engine.flow.routing):

1. A's shard, at the event's place in its order, fires A's timers due by then, removes A's
   state and timers, and writes a transfer record (A's state, under an id fixed by the
   alias event, A and B) and the link A -> B, all in its own batch transaction. A customer
   never seen before is handed off too (an empty state): the record tells B's shard the
   hand-off happened.
2. B's shard holds the alias event, and every event after it, until the record is
   committed; then it fires B's timers due by then, merges A's state into B's
   (engine.core.identity.merge_states) and commits the merged state with a marker
   "transfer T merged", in its own transaction, with the event's position. The record is
   deleted after that commit.

A kill -9 at any point leaves one of: nothing committed (both re-applied), the hand-off
committed and the merge not (the merge re-applied from the record), the merge committed
and the record left over (B's position and marker make it harmless). No step is applied
twice, and none is lost. Events for A routed to A's shard after its hand-off (from another
source partition, whose router had not learned the link yet) are dead letters with the
reason: applying them to an empty A would split the customer again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import redis

from engine.core.aggregates import CHECK_HISTOGRAM, SPEND_HISTOGRAM, VISITS_HISTOGRAM, Aggregates
from engine.core.events import encode_event
from engine.core.identity import ALIAS, HANDOFF
from engine.core.merge import decode_transfer, encode_transfer, histogram_values, merge_states
from engine.core.records import BatchResult, DeadLetter
from engine.core.runtime import Effects
from engine.core.scope import ScopeContext
from engine.core.state import CustomerState
from engine.flow.routing import shard_of
from engine.storage.identity_store import (
    IdentityWrites,
    drop_transfers,
    read_links,
    read_transfers,
)
from engine.storage.store import shard_tag

if TYPE_CHECKING:
    from engine.flow.processor import ShardProcessor, _Pending, _Shard

CRASH_VARIABLE = "JOURNEYS_TEST_CRASH_AT"
"""Fault injection for the kill -9 tests: `handoff:N` or `merge:N` kills the process with
SIGKILL right after the Nth commit that handed a customer off (or merged one), before
anything else happens. Read once, when the engine starts; unset in production."""
LINKS_REFRESH_S = 1.0
"""How often a process's routers read the links other processes' shards committed."""


# ---------------------------------------------------------------------- routers' feed
class LinkFeed:
    """The links every shard has committed, read from Redis at most every
    `LINKS_REFRESH_S` and shared by a process's routers (each keeps its own map)."""

    def __init__(self, client: redis.Redis, prefix: str, shards: int,
                 refresh_s: float = LINKS_REFRESH_S) -> None:
        self.client = client
        self.tags = [shard_tag(prefix, shard) for shard in range(shards)]
        self.offsets = [0] * shards
        self.refresh_s = refresh_s
        self._entries: list[list[Any]] = []
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def entries(self) -> list[list[Any]]:
        """[identifier, survivor, source id, position] of every link read so far."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.refresh_s:
            with self._lock:
                if self._read_at is None or now - self._read_at >= self.refresh_s:
                    self._read_at = now
                    for shard, entries in enumerate(read_links(self.client, self.tags,
                                                               self.offsets)):
                        self.offsets[shard] += len(entries)
                        self._entries.extend(entries)
        return self._entries


def shard_links(client: redis.Redis, tag: str) -> dict[str, str]:
    """Identifier -> survivor of the identifiers a shard handed off."""
    return {entry[0]: entry[1] for entry in read_links(client, [tag], [0])[0]}


# ---------------------------------------------------------------------- taking events
def drop_stale(shard: _Shard, items: list[_Pending]) -> list[_Pending]:
    """`items` less the events for customers this shard handed off already: those are
    dead letters (a second hand-off of one writes an empty transfer record with the reason,
    so the survivor's shard does not wait for it, unless the transfer has a record: the
    same hand-off delivered twice)."""
    links = shard.links
    kept = []
    work = shard.work
    for item in items:
        event = item.event
        survivor = links.get(event.customer_id)
        if survivor is None:
            kept.append(item)
            continue
        work.applied.setdefault(item.source_id, []).append(event.position)
        if event.type == HANDOFF:
            reason = refusal_reason(event.customer_id, survivor, event.data["to"], event.event_id)
            writes = _writes(shard)
            if event.data["transfer"] not in writes.transfers:  # else: delivered twice
                writes.refused[event.data["transfer"]] = encode_transfer(
                    event.customer_id, event.data["to"], event.applied_at, None, reason)
        elif event.type == ALIAS:
            shard.merges -= 1
            handed = ", ".join(repr(t) for _, t in event.data["merge"]) or "none"
            reason = (f"alias event for '{event.customer_id}', which was merged into "
                      f"'{survivor}' before it arrived (from another source partition); "
                      f"the states it handed off stay in their transfer records "
                      f"({handed}), not merged")
        else:
            reason = stale_reason(event.customer_id, survivor)
        work.dead_letters.append(_dead(item, reason))
    return kept


def refusal_reason(customer_id: str, survivor: str, to: str, event_id: str) -> str:
    """Why a second hand-off of `customer_id` (to `to`) is refused."""
    if to == survivor:
        return (f"'{customer_id}' was handed off to '{survivor}' already; this hand-off "
                f"(alias event {event_id!r}) repeats it and changes nothing")
    return (f"'{customer_id}' is linked to '{survivor}' already; it is not linked to "
            f"'{to}' (alias event {event_id!r})")


def stale_letter(shard: _Shard, item: _Pending) -> DeadLetter:
    """The dead letter of an event for a customer handed off earlier in the same slice."""
    customer_id = item.event.customer_id
    return _dead(item, stale_reason(customer_id, shard.links[customer_id]))


def stale_reason(customer_id: str, survivor: str) -> str:
    return (f"customer_id '{customer_id}' was merged into '{survivor}' before this event "
            f"arrived (from another source partition than the alias event); send it again "
            f"for '{survivor}'")


# ---------------------------------------------------------------------- waiting
def first_unready(processor: ShardProcessor, shard: _Shard, count: int,
                  result: BatchResult) -> int | None:
    """Where the shard's first `count` pending events stop: at the first alias event whose
    hand-offs are not all committed yet, with the hand-offs of its own line on this shard
    (all of a line's records on a shard are applied, and committed, together, since its
    position is committed once); None: none waits."""
    pending = shard.pending
    for index in range(count):
        item = pending[index]
        if item.event.type == ALIAS and not _ready(processor, shard, item, result):
            while index > 0 and pending[index - 1].position == item.position \
                    and pending[index - 1].source_id == item.source_id:
                index -= 1
            return index
    return None


def _ready(processor: ShardProcessor, shard: _Shard, item: _Pending,
           result: BatchResult) -> bool:
    """Whether every hand-off the alias event merges is committed (their records, or this
    shard's markers, are read into `shard.ready`). A hand-off waiting in a shard this
    worker owns is committed now rather than at the end of the drain. A hand-off on this
    shard is ready: it comes with the alias event, just before it, and is committed with it.
    """
    own, shards = shard.shard, processor.shard_count
    merged = _merged_here(shard)
    wanted = [(c, t) for c, t in item.event.data["merge"]
              if t not in shard.ready and t not in merged and shard_of(c, shards) != own]
    if not wanted:
        return True
    missing = _read(processor, shard, wanted)
    if missing:
        mine = {s.shard: s for s in processor._mine()}
        local = {shard_of(c, processor.shard_count) for c, _ in missing}
        flushed = False
        for number in sorted(local):
            source = mine.get(number)
            if source is not None and source is not shard and not source.work.empty():
                processor._commit(source, result)
                flushed = True
        if flushed:
            missing = _read(processor, shard, missing)
    return not missing


def _read(processor: ShardProcessor, shard: _Shard,
          wanted: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Read the transfers `wanted` ((identifier, transfer id)); those not committed yet."""
    tags = [(shard_tag(processor.prefix, shard_of(c, processor.shard_count)), t)
            for c, t in wanted]
    missing = []
    for (c, t), (merged, record) in zip(wanted, read_transfers(
            processor.client, shard.store.tag, tags), strict=True):
        if merged:
            shard.ready[t] = None
        elif record is not None:
            shard.ready[t] = record
        else:
            missing.append((c, t))
    return missing


# ---------------------------------------------------------------------- applying
def apply(processor: ShardProcessor, shard: _Shard, item: _Pending, ctx: ScopeContext,
          effects: Effects, result: BatchResult) -> None:
    """Apply a hand-off (at the merged customer's shard) or an alias event (at the
    survivor's), whose state is in the shard's cache (unless handed off earlier in the same
    slice, by an alias event of another partition: then it is refused as `drop_stale`
    refuses it)."""
    if item.event.customer_id in shard.links:
        drop_stale(shard, [item])
        return
    if item.event.type == HANDOFF:
        _hand_off(processor, shard, item, ctx, effects)
        return
    event = item.event
    state = shard.cache[event.customer_id]
    processor.runtime.fire_due(state, event.applied_at, ctx, effects)
    before = histogram_values(state)
    writes: IdentityWrites | None = None
    for identifier, transfer_id in event.data["merge"]:
        if transfer_id in _merged_here(shard):  # the same alias event, read twice
            continue
        record = _record(processor, shard, identifier, transfer_id)
        if record is None:  # merged before a restart: the marker says so
            continue
        transfer = decode_transfer(record)
        writes = _writes(shard)
        writes.merged[transfer_id] = event.applied_at
        writes.consumed.append(
            (shard_tag(processor.prefix, shard_of(identifier, processor.shard_count)),
             transfer_id))
        if transfer.note is not None:  # refused by its shard: a dead letter there says why
            effects.stats["identity|link_refused"] += 1
            continue
        if transfer.state is None:
            effects.stats["identity|linked"] += 1
            continue
        dropped = merge_states(state, transfer.state)
        effects.stats["identity|merged"] += 1
        if dropped:
            effects.stats["identity|enrollments_dropped"] += len(dropped)
    _move_histograms(shard.own, before, histogram_values(state))
    shard.merges -= 1
    first_seen = not state.seen  # nothing was applied to the survivor nor merged into it
    # remembered as applied, so a repeat (which merges nothing: the router knows the
    # link) is refused as the other types are; merges are guarded by the transfer markers
    refusal = state.refuse_event(event.event_id, event.ts, processor.runtime.dedup_window_ms)
    if refusal is not None and writes is None:  # a repeat: it merged nothing
        shard.work.dead_letters.append(_dead(item, refusal))
        return
    broadcasts = processor.runtime.broadcasts
    if first_seen and broadcasts is not None:
        # the customer is first seen now: armed for the broadcasts whose walk has passed,
        # as at a first event of any other type
        broadcasts.arm_new(state, event.applied_at)
    if processor.timeline_kept > 0:
        shard.work.timeline.append(event)
    result.applied_events += 1
    shard.work.figures.events += 1


def _merged_here(shard: _Shard) -> dict[str, int]:
    """The transfers merged in the shard's work not committed yet (the committed ones have
    a marker in Redis)."""
    writes = shard.work.identity
    return writes.merged if writes is not None else {}


def _record(processor: ShardProcessor, shard: _Shard, identifier: str,
            transfer_id: str) -> bytes | None:
    """The transfer record an alias event merges: read while it waited, or handed off on
    this shard (in this work, or committed before)."""
    if transfer_id in shard.ready:
        return shard.ready.pop(transfer_id)
    writes = shard.work.identity
    record = None
    if writes is not None:
        record = writes.transfers.get(transfer_id) or writes.refused.get(transfer_id)
    if record is None:
        missing = _read(processor, shard, [(identifier, transfer_id)])
        if missing:
            raise RuntimeError(f"shard {shard.shard}: the hand-off {transfer_id!r} of "
                               f"{identifier!r} is neither applied nor committed")
        return shard.ready.pop(transfer_id)
    return record


def _hand_off(processor: ShardProcessor, shard: _Shard, item: _Pending, ctx: ScopeContext,
              effects: Effects) -> None:
    event = item.event
    customer_id = event.customer_id
    survivor = event.data["to"]
    work = shard.work
    state: CustomerState = shard.cache.pop(customer_id)
    processor.runtime.fire_due(state, event.applied_at, ctx, effects)
    _move_histograms(shard.own, histogram_values(state), (None, None, None))
    writes = _writes(shard)
    writes.transfers[event.data["transfer"]] = encode_transfer(
        customer_id, survivor, event.applied_at, state)
    writes.links.append(orjson.dumps([customer_id, survivor, item.source_id, event.position]))
    writes.moved.append(customer_id)
    shard.links[customer_id] = survivor
    shard.due_at.pop(customer_id, None)
    work.dirty.discard(customer_id)
    shard.stored_due = [(at, c) for at, c in shard.stored_due if c != customer_id]
    effects.stats["identity|handed_off"] += 1


def _move_histograms(own: Aggregates, before: tuple[float | None, ...],
                     after: tuple[float | None, ...]) -> None:
    """The population histograms count the customer under its new totals (or no more)."""
    for name, old, new in zip((SPEND_HISTOGRAM, CHECK_HISTOGRAM, VISITS_HISTOGRAM),
                              before, after, strict=True):
        own.move(name, old, new)


def _writes(shard: _Shard) -> IdentityWrites:
    work = shard.work
    if work.identity is None:
        work.identity = IdentityWrites()
    return work.identity


def _dead(item: _Pending, reason: str) -> DeadLetter:
    event = item.event
    raw = event.raw if event.raw is not None else encode_event(event)
    return DeadLetter(reason, raw, event.position, item.source_id, event.line)


# ---------------------------------------------------------------------- after a commit
def committed(client: redis.Redis, writes: IdentityWrites) -> None:
    """The shard committed `writes`: delete the transfer records it merged."""
    if writes.moved:
        _crash_point("handoff")
    if writes.consumed:
        _crash_point("merge")
        drop_transfers(client, writes.consumed)


def _parse_crash(value: str) -> tuple[str, int] | None:
    name, _, count = value.partition(":")
    return (name, int(count or 1)) if name else None


_CRASH_AT = _parse_crash(os.environ.get(CRASH_VARIABLE, ""))
_crash_counts: dict[str, int] = {}


def _crash_point(name: str) -> None:
    if _CRASH_AT is None or _CRASH_AT[0] != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= _CRASH_AT[1]:
        os.kill(os.getpid(), signal.SIGKILL)
