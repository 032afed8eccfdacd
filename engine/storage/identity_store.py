"""Redis layout of identity links and hand-offs (see engine.flow.identity), per shard and
under the shard's hash tag, so each is written in the shard's own batch transaction:

    {p:sN}:links       list: [identifier, survivor, source id, position] (JSON) of each
                       identifier this shard handed off, in commit order; routers of every
                       process read them into their identity map
    {p:sN}:transfers   hash: transfer id -> the state this shard handed off and where to
                       (engine.core.identity.encode_transfer), until the survivor's shard
                       has merged it
    {p:sN}:merged      hash: transfer id -> time: the transfers this shard merged (the
                       marker that makes a left-over transfer record harmless)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis


def links_key(tag: str) -> str:
    return f"{tag}:links"


def transfers_key(tag: str) -> str:
    return f"{tag}:transfers"


def merged_key(tag: str) -> str:
    return f"{tag}:merged"


@dataclass
class IdentityWrites:
    """What a shard's batch commit writes for identity, in the same transaction as its
    states: customers handed off (deleted here), their transfer records and links, and the
    markers of the transfers merged here."""

    moved: list[str] = field(default_factory=list)
    transfers: dict[str, bytes] = field(default_factory=dict)
    links: list[bytes] = field(default_factory=list)
    refused: dict[str, bytes] = field(default_factory=dict)
    """Records of hand-offs refused here (the identifier was handed off already): each is
    written only where its transfer has no record, so a hand-off delivered twice (the same
    alias event read from two partitions) keeps the state it moved."""
    merged: dict[str, int] = field(default_factory=dict)
    consumed: list[tuple[str, str]] = field(default_factory=list)
    """(source shard's tag, transfer id) of the records merged: deleted after the commit."""


def add_writes(pipe: Any, tag: str, customer_key: Any, timers_key: str,
               writes: IdentityWrites) -> None:
    """Queue `writes` on the shard's transaction `pipe` (after its states are written)."""
    if writes.moved:
        pipe.delete(*[customer_key(c) for c in writes.moved])
        pipe.zrem(timers_key, *writes.moved)
    if writes.transfers:
        pipe.hset(transfers_key(tag), mapping=writes.transfers)
    for transfer, record in writes.refused.items():
        pipe.hsetnx(transfers_key(tag), transfer, record)
    if writes.links:
        pipe.rpush(links_key(tag), *writes.links)
    if writes.merged:
        pipe.hset(merged_key(tag), mapping=writes.merged)


def read_links(client: redis.Redis, tags: Sequence[str], offsets: Sequence[int]
               ) -> list[list[list[Any]]]:
    """Each shard's links from its offset on (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for tag, offset in zip(tags, offsets, strict=True):
        pipe.lrange(links_key(tag), offset, -1)
    return [[orjson.loads(entry) for entry in entries] for entries in pipe.execute()]


def read_transfers(client: redis.Redis, own_tag: str,
                   wanted: Sequence[tuple[str, str]]) -> list[tuple[bool, bytes | None]]:
    """For each (source shard's tag, transfer id): whether this shard merged it already,
    and its record (None: not written, or deleted after the merge)."""
    pipe = client.pipeline(transaction=False)
    for tag, transfer in wanted:
        pipe.hexists(merged_key(own_tag), transfer)
        pipe.hget(transfers_key(tag), transfer)
    replies = pipe.execute()
    return [(bool(replies[i]), replies[i + 1]) for i in range(0, len(replies), 2)]


def drop_transfers(client: redis.Redis, done: Sequence[tuple[str, str]]) -> None:
    """Delete merged transfer records (each its own command: they live on other shards'
    slots). A crash before this leaves them; the survivor's marker makes them harmless."""
    pipe = client.pipeline(transaction=False)
    for tag, transfer in done:
        pipe.hdel(transfers_key(tag), transfer)
    pipe.execute()
