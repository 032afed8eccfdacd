"""JSON Lines source and sinks for the dataflow."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import StatefulSinkPartition

from connectors.appending import open_for_append
from connectors.line_numbers import line_number_at
from connectors.single_writer import SingleWriterSink
from engine.records import DeadLetter, LineMark, RawBatch
from engine.run_defaults import DEFAULT_BATCH_LINES

CHUNK_BYTES = 1 << 20
DEAD_LETTER_RAW_BYTES = 64 << 10
"""A dead letter keeps at most this much of its input line, with the length and a hash of
the whole: a 20 MB line must not make a 20 MB dead letter."""


TAIL_POLL_S = 0.005
"""How often a tailed file with nothing new is read again: an empty read costs a system
call, a longer wait would be latency for the next event."""
LINE_MARK_BYTES = 16 << 20
"""A source reports a line mark (a line start and its number) each time it has read this
much further: a resume then counts the lines of at most this many bytes past the last mark
it finds (8 to 12 ms measured for 16 MiB from the page cache), plus the batches not yet
committed, rather than the whole file before it."""

class JsonlPartition(StatefulSourcePartition[RawBatch, int]):
    """Reads a JSONL file in batches of lines; each line's position is its byte offset, and
    each batch carries the lines' 1-based numbers (`start_line` is the number of the line at
    `start`; blank lines count). Every `LINE_MARK_BYTES` read, `on_line_mark` is told a line
    start and its number.

    In tail mode it waits for more lines and emits empty batches every `tick_s` seconds,
    so wall-clock timers fire with no traffic; with `idle_exit_s` it stops after that long
    without a new line. Blank lines are skipped; `on_blank` is told how many.
    """

    def __init__(self, path: Path, start: int, batch_lines: int, tail: bool, tick_s: float,
                 until_ms: int | None, idle_exit_s: float | None,
                 on_blank: Callable[[int], None] | None = None, start_line: int = 1,
                 on_line_mark: Callable[[LineMark], None] | None = None) -> None:
        self._file: BinaryIO = path.open("rb")
        self._file.seek(max(start, 0))
        self._position = max(start, 0)
        self._batch_lines = batch_lines
        self._tail = tail
        self._tick_s = tick_s
        self._until_ms = until_ms
        self._pending = b""
        self._pending_line = start_line
        """The number of the line `_pending` starts."""
        self._lines: list[tuple[int, bytes]] = []
        self._numbers: list[int] = []
        """The line number of each of `_lines`."""
        self._on_line_mark = on_line_mark
        self._marked = self._position
        self._eof = False
        self._last_emit = time.monotonic()
        self._last_data = time.monotonic()
        self._idle_exit_s = idle_exit_s
        self._last_line = self._position - 1
        self._opened = False
        self._on_blank = on_blank

    def next_batch(self) -> list[RawBatch]:
        if not self._opened:
            # an opening batch, even with nothing to read: every shard then writes the
            # commands its outbox kept from an earlier run
            self._opened = True
            return [RawBatch([], self._last_line)]
        while len(self._lines) < self._batch_lines and not self._eof:
            if not self._read_chunk():
                break
        if self._lines:
            taken = self._lines[:self._batch_lines]
            numbers = self._numbers[:self._batch_lines]
            del self._lines[:self._batch_lines]
            del self._numbers[:self._batch_lines]
            self._last_emit = self._last_data = time.monotonic()
            self._last_line = taken[-1][0]
            self._mark(self._last_line, numbers[-1])
            return [RawBatch(taken, self._last_line, line_numbers=numbers)]
        if not self._tail:
            line, self._pending = self._pending, b""
            if line.strip():
                self._last_line = self._position - len(line)
                return [RawBatch([(self._last_line, line)], self._last_line,
                                 line_numbers=[self._pending_line])]
            self._skipped(1 if line else 0)
            if self._until_ms is not None:
                until, self._until_ms = self._until_ms, None
                return [RawBatch([], self._last_line, clock_hint=until)]
            raise StopIteration
        self._eof = False
        if self._idle_exit_s is not None and time.monotonic() - self._last_data > self._idle_exit_s:
            raise StopIteration
        if time.monotonic() - self._last_emit >= self._tick_s:
            self._last_emit = time.monotonic()
            return [RawBatch([], self._last_line)]
        return []

    def _read_chunk(self) -> bool:
        chunk = self._file.read(CHUNK_BYTES)
        if not chunk:
            self._eof = True
            return False
        data = self._pending + chunk
        start_position = self._position - len(self._pending)
        self._position += len(chunk)
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = data
            return True
        self._pending = data[end + 1:]
        offset = start_position
        number = self._pending_line
        blank = 0
        for line in data[:end].split(b"\n"):
            if line.strip():
                self._lines.append((offset, line.rstrip(b"\r")))
                self._numbers.append(number)
            else:
                blank += 1
            offset += len(line) + 1
            number += 1
        self._pending_line = number
        self._skipped(blank)
        return True

    def _mark(self, offset: int, line: int) -> None:
        """Report the line start `offset` as a mark when it is `LINE_MARK_BYTES` past the
        last one."""
        if self._on_line_mark is not None and offset - self._marked >= LINE_MARK_BYTES:
            self._marked = offset
            self._on_line_mark(LineMark(offset, line))

    def _skipped(self, blank: int) -> None:
        if blank and self._on_blank is not None:
            self._on_blank(blank)

    def next_awake(self) -> datetime | None:
        if self._tail and not self._lines:
            return datetime.now(UTC) + timedelta(seconds=min(self._tick_s, TAIL_POLL_S))
        return None

    def snapshot(self) -> int:
        return self._position - len(self._pending)

    def close(self) -> None:
        self._file.close()


class JsonlSource(FixedPartitionedSource[RawBatch, int]):
    """A JSONL file as one source partition, starting at a byte offset.

    `on_blank` is told how many blank lines were skipped, as they are read. The number of
    the line at the starting offset is counted from `line_mark` (a line start read before,
    see `connectors.line_numbers`), or from the file's start; `on_line_mark` is told a new
    mark every `LINE_MARK_BYTES` read.
    """

    def __init__(self, path: str | Path, *, start: int = 0, batch_lines: int = DEFAULT_BATCH_LINES,
                 tail: bool = False, tick_s: float = 1.0, until_ms: int | None = None,
                 idle_exit_s: float | None = None,
                 on_blank: Callable[[int], None] | None = None,
                 line_mark: LineMark | None = None,
                 on_line_mark: Callable[[LineMark], None] | None = None) -> None:
        self.path = Path(path)
        self.idle_exit_s = idle_exit_s
        self.start = start
        self.batch_lines = batch_lines
        self.tail = tail
        self.tick_s = tick_s
        self.until_ms = until_ms
        self.on_blank = on_blank
        self.line_mark = line_mark
        self.on_line_mark = on_line_mark

    def list_parts(self) -> list[str]:
        return [self.path.name]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> JsonlPartition:
        start = max(resume_state if resume_state is not None else self.start, 0)
        return JsonlPartition(self.path, start, self.batch_lines, self.tail, self.tick_s,
                              self.until_ms, self.idle_exit_s, self.on_blank,
                              start_line=line_number_at(self.path, start, self.line_mark),
                              on_line_mark=self.on_line_mark)


class _AppendedFile:
    """A file opened for appending (or stdout for "-") that both sinks write lines to."""

    def __init__(self, path: str, on_write: Callable[[int], None] | None) -> None:
        self._stdout = path == "-"
        self._file: BinaryIO = sys.stdout.buffer if self._stdout else open_for_append(path)
        self._on_write = on_write

    def append(self, lines: list[bytes], *, durable: bool = False) -> None:
        """Write and flush `lines`; with `durable`, fsync a file before returning."""
        self._file.write(b"".join(lines))
        self._file.flush()
        if durable and not self._stdout:
            os.fsync(self._file.fileno())
        if self._on_write is not None:
            self._on_write(len(lines))

    def close(self) -> None:
        if not self._stdout:
            self._file.close()


class _LinesPartition(StatefulSinkPartition[bytes, None]):
    def __init__(self, path: str, on_write: Callable[[int], None] | None) -> None:
        self._out = _AppendedFile(path, on_write)

    def write_batch(self, values: list[bytes]) -> None:
        if values:
            self._out.append(values)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._out.close()


class JsonlSink(SingleWriterSink[bytes]):
    """Appends encoded lines to a file (or stdout for "-"); one writer keeps the order."""

    part_name = "lines"

    def __init__(self, path: str | Path, on_write: Callable[[int], None] | None = None) -> None:
        self.path = str(path)
        self.on_write = on_write

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> _LinesPartition:
        return _LinesPartition(self.path, self.on_write)


class _CommandsPartition(StatefulSinkPartition[tuple[str, bytes], None]):
    def __init__(self, path: str, acknowledge: Callable[[dict[int, int]], None],
                 on_write: Callable[[int], None] | None) -> None:
        self._out = _AppendedFile(path, on_write)
        self._acknowledge = acknowledge

    def write_batch(self, values: list[tuple[str, bytes]]) -> None:
        if not values:
            return
        self._out.append([line for _, line in values], durable=True)
        written: dict[int, int] = {}
        for shard, _ in values:
            written[int(shard)] = written.get(int(shard), 0) + 1
        self._acknowledge(written)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._out.close()


class CommandSink(SingleWriterSink[tuple[str, bytes]]):
    """Appends (shard, command line) items to a file or stdout, then acknowledges them.

    The lines are flushed (and fsynced for a file) before `acknowledge` receives how many
    of each shard's commands were written, so the engine can drop them from its outbox.
    """

    part_name = "commands"

    def __init__(self, path: str | Path, acknowledge: Callable[[dict[int, int]], None],
                 on_write: Callable[[int], None] | None = None) -> None:
        self.path = str(path)
        self.acknowledge = acknowledge
        self.on_write = on_write

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> _CommandsPartition:
        return _CommandsPartition(self.path, self.acknowledge, self.on_write)


def encode_dead_letter(dead: DeadLetter) -> bytes:
    """A dead letter as JSON: the reason, where it came from (`source`; `position`, the byte
    offset in a file or the offset in a Kafka partition; `line`, the 1-based line number in a
    file), and the raw input: intact up
    to `DEAD_LETTER_RAW_BYTES`; beyond, its start with `raw_truncated`, `raw_length` (bytes)
    and `raw_sha256` of the whole."""
    record: dict[str, Any] = {
        "reason": dead.reason,
        "source": dead.source,
        "position": dead.position,
    }
    if dead.line is not None:
        record["line"] = dead.line
    truncated = len(dead.raw) > DEAD_LETTER_RAW_BYTES
    kept = dead.raw[:DEAD_LETTER_RAW_BYTES]
    text = _utf8(kept, truncated)
    if text is None:
        record["raw_base64"] = base64.b64encode(kept).decode("ascii")
    else:
        record["raw"] = text
    if truncated:
        record["raw_truncated"] = True
        record["raw_length"] = len(dead.raw)
        record["raw_sha256"] = hashlib.sha256(dead.raw).hexdigest()
    return orjson.dumps(record) + b"\n"


def _utf8(data: bytes, truncated: bool) -> str | None:
    """`data` as text, or None if it is not UTF-8; a cut-off last character is dropped."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.reason == "unexpected end of data":
            return data[:exc.start].decode("utf-8")
        return None
