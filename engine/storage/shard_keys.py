"""Routing keys that spread the shards evenly over the dataflow's workers.

A stateful step runs each key on the worker that Bytewax picks by hashing the key. With
the plain keys "0" to "7" and two workers, that puts six shards on one worker and two on
the other (four of four Kafka partitions on one), so a second process adds little. The
placement depends only on the key and the total number of workers, so each process
finds, by running a tiny dataflow with that many worker threads, a key for every shard
that lands on worker `shard % workers`: the same keys in every process, and balanced.
"""

from __future__ import annotations

import threading
from functools import cache

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.run import cli_main

CANDIDATES_PER_SHARD = 64
"""Spellings tried per shard ("3", "3~1", "3~2", ...) before giving up balance."""


class _Once(StatelessSourcePartition[str]):
    def __init__(self, keys: list[str]) -> None:
        self._keys: list[str] | None = keys

    def next_batch(self) -> list[str]:
        if self._keys is None:
            raise StopIteration
        keys, self._keys = self._keys, None
        return keys


class _Candidates(DynamicSource[str]):
    """Worker 0 emits every candidate; each worker notes which thread it runs on."""

    def __init__(self, keys: list[str], threads: dict[int, int]) -> None:
        self._keys = keys
        self._threads = threads

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Once:
        self._threads[threading.get_ident()] = worker_index
        return _Once(self._keys if worker_index == 0 else [])


def _placement(keys: list[str], workers: int) -> dict[str, int]:
    """The worker each key's stateful step runs on, among `workers` workers."""
    threads: dict[int, int] = {}
    placed: dict[str, int] = {}
    lock = threading.Lock()

    def note(state: None, key: str) -> tuple[None, None]:
        with lock:
            placed[key] = threads[threading.get_ident()]
        return None, None

    flow = Dataflow("shard_placement")
    keyed = op.map("key", op.input("keys", flow, _Candidates(keys, threads)),
                   lambda key: (key, key))
    op.inspect("done", op.stateful_map("place", keyed, note), lambda *_: None)
    cli_main(flow, workers_per_process=workers)
    return placed


@cache
def shard_keys(shards: int, workers: int) -> tuple[str, ...]:
    """The routing key of each shard, so that shard s runs on worker s % workers.

    A shard none of whose spellings lands on its worker keeps its plain key (placement
    is then less even, never wrong: any key routes all of a shard's batches one way).
    """
    plain = tuple(str(shard) for shard in range(shards))
    if workers <= 1:
        return plain
    candidates = [_spelling(shard, n) for shard in range(shards)
                  for n in range(CANDIDATES_PER_SHARD)]
    placed = _placement(candidates, workers)
    keys = []
    for shard in range(shards):
        wanted = shard % workers
        keys.append(next((_spelling(shard, n) for n in range(CANDIDATES_PER_SHARD)
                          if placed.get(_spelling(shard, n)) == wanted), plain[shard]))
    return tuple(keys)


def shard_of_key(key: str) -> int:
    """The shard a routing key stands for."""
    return int(key.partition("~")[0])


def _spelling(shard: int, n: int) -> str:
    return str(shard) if n == 0 else f"{shard}~{n}"
