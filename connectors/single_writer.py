"""A sink with one partition, so one writer keeps the order of everything it receives."""

from __future__ import annotations

from typing import Generic, TypeVar

from bytewax.outputs import FixedPartitionedSink

X = TypeVar("X")


class SingleWriterSink(FixedPartitionedSink[X, None], Generic[X]):
    """Every item goes to the one partition named `part_name`."""

    part_name = "out"

    def list_parts(self) -> list[str]:
        return [self.part_name]

    def part_fn(self, item_key: str) -> int:
        return 0
