"""The sink seam of the dataflow: where message commands and dead letters go.

A sink has one writer, so one thread keeps the order of everything it receives. A command
writer's `write` returns only once its output holds the lines (a file flushed and fsynced,
a broker's acknowledgement); then the base tells the engine how many of each shard's
commands were written, and they leave that shard's outbox. A writer that dies before
returning leaves them in the outbox: the next run writes them again, so a command may
repeat (with the same command_id), never go missing.

A new sink is a writer class (`CommandWriter` or `DeadLetterWriter`) and a sink class
whose `open_writer` makes one.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NoReturn

from bytewax.outputs import StatefulSinkPartition

from connectors.single_writer import SingleWriterSink
from engine.core.records import DeadLetter
from engine.errors import say_before_exit

__all__ = ["Acknowledge", "CommandSink", "CommandWriter", "DeadLetterSink",
           "DeadLetterWriter", "stop_process"]

Acknowledge = Callable[[dict[int, int]], None]
"""Told, after a write, how many commands of each shard it wrote (shard -> count)."""


def stop_process(reason: str) -> NoReturn:
    """End the process at once with exit code 3, saying why on stderr.

    For a writer that cannot deliver: an exception would not reach the caller from inside
    the dataflow runtime's sinks (it would leave the run hanging). Everything committed is
    safe in Redis and the unwritten commands stay in the outbox, so the next run resumes.
    """
    say_before_exit(f"journeys: {reason}")
    os._exit(3)


class CommandWriter(ABC):
    """Writes command lines (JSON, newline-ended) in order, durably before returning."""

    @abstractmethod
    def write(self, lines: list[bytes]) -> None:
        """Write `lines`; return only once the output holds them all."""

    @abstractmethod
    def close(self) -> None:
        """Release the output (not guaranteed to be called on a crash)."""


class DeadLetterWriter(ABC):
    """Writes dead letters in order."""

    @abstractmethod
    def write(self, dead: list[DeadLetter]) -> None:
        """Write `dead`."""

    @abstractmethod
    def close(self) -> None:
        """Release the output (not guaranteed to be called on a crash)."""


class _CommandsPartition(StatefulSinkPartition[tuple[str, bytes], None]):
    def __init__(self, writer: CommandWriter, acknowledge: Acknowledge | None,
                 on_write: Callable[[int], None] | None) -> None:
        self._writer = writer
        self._acknowledge = acknowledge
        self._on_write = on_write

    def write_batch(self, values: list[tuple[str, bytes]]) -> None:
        if not values:
            return
        self._writer.write([line for _, line in values])
        if self._acknowledge is not None:
            written: dict[int, int] = {}
            for shard, _ in values:
                written[int(shard)] = written.get(int(shard), 0) + 1
            self._acknowledge(written)
        if self._on_write is not None:
            self._on_write(len(values))

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._writer.close()


class CommandSink(SingleWriterSink[tuple[str, bytes]], ABC):
    """(shard, command line) items to one writer; each write acknowledged once it returns.

    The flow builder wires `acknowledge` (drop the written commands from the outbox) and
    `on_write` (count them) with `wire`.
    """

    part_name = "commands"

    def __init__(self) -> None:
        self.acknowledge: Acknowledge | None = None
        self.on_write: Callable[[int], None] | None = None

    def wire(self, acknowledge: Acknowledge, on_write: Callable[[int], None] | None) -> None:
        """Acknowledge each write to the outbox and count it."""
        self.acknowledge = acknowledge
        self.on_write = on_write

    @abstractmethod
    def open_writer(self) -> CommandWriter:
        """A writer to the output (called once per run, in the worker that writes)."""

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> _CommandsPartition:
        return _CommandsPartition(self.open_writer(), self.acknowledge, self.on_write)


class _DeadPartition(StatefulSinkPartition[DeadLetter, None]):
    def __init__(self, writer: DeadLetterWriter) -> None:
        self._writer = writer

    def write_batch(self, values: list[DeadLetter]) -> None:
        if values:
            self._writer.write(values)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._writer.close()


class DeadLetterSink(SingleWriterSink[DeadLetter], ABC):
    """Dead letters to one writer, in the order they come."""

    part_name = "dead"

    @abstractmethod
    def open_writer(self) -> DeadLetterWriter:
        """A writer to the output (called once per run, in the worker that writes)."""

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _DeadPartition:
        return _DeadPartition(self.open_writer())
