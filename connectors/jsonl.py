"""JSON Lines files as the dataflow's source and sinks."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import redis

from connectors.appending import open_for_append, sync_to_disk
from connectors.flow_sink import CommandSink, CommandWriter, DeadLetterSink, DeadLetterWriter
from connectors.flow_source import EventSource, Pacing, SourcePartition
from connectors.line_numbers import line_number_at
from engine.core.records import DeadLetter, LineMark, RawBatch
from engine.run_defaults import DEFAULT_BATCH_LINES
from engine.storage.line_marks import load_line_mark, save_line_mark

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

STDIN = "-"
"""The events path that reads standard input."""
STDIN_PATHS = frozenset({STDIN, "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
"""The names of standard input: one source (`stdin`), whichever of them a run was given."""


def is_stream(path: str | Path) -> bool:
    """Whether `path` is read as a stream rather than a file: standard input ("-"), a pipe
    or a device. A stream cannot be read from a byte position, only read on from its
    start."""
    if str(path) == STDIN:
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class JsonlPartition(SourcePartition):
    """Reads a JSONL file in batches of lines; each line's position is its byte offset, and
    each batch carries the lines' 1-based numbers (`start_line` is the number of the line at
    `start`; blank lines count). Every `LINE_MARK_BYTES` read, `on_line_mark` is told a line
    start and its number.

    In tail mode it waits for more lines and emits empty batches every `tick_s` seconds,
    so wall-clock timers fire with no traffic; with `idle_exit_s` it stops after that long
    without a new line. Blank lines are skipped; `on_blank` is told how many.
    """

    reports_idle = False

    def __init__(self, path: Path, start: int, batch_lines: int, tail: bool, tick_s: float,
                 until_ms: int | None, idle_exit_s: float | None,
                 on_blank: Callable[[int], None] | None = None, start_line: int = 1,
                 on_line_mark: Callable[[LineMark], None] | None = None,
                 source_id: str = "") -> None:
        position = max(start, 0)
        super().__init__(source_id or str(path), Pacing(
            batch_size=batch_lines, stop_at_end=not tail, tick_s=tick_s, until_ms=until_ms,
            idle_exit_s=idle_exit_s), last=position - 1)
        self._file: BinaryIO = sys.stdin.buffer if str(path) == STDIN else path.open("rb")
        if self._file.seekable():
            self._file.seek(position)
        else:  # a stream (a pipe): read on to the position, counting the lines passed
            position, start_line = _read_past(self._file, position)
        self._position = position
        self._pending = b""
        self._pending_line = start_line
        """The number of the line `_pending` starts."""
        self._lines: list[tuple[int, bytes]] = []
        self._numbers: list[int] = []
        """The line number of each of `_lines`."""
        self._on_line_mark = on_line_mark
        self._marked = self._position
        self._eof = False
        self._on_blank = on_blank

    def read(self, limit: int) -> RawBatch | None:
        while len(self._lines) < limit and not self._eof:
            if not self._read_chunk():
                break
        if self._lines:
            taken = self._lines[:limit]
            numbers = self._numbers[:limit]
            del self._lines[:limit]
            del self._numbers[:limit]
            self._mark(taken[-1][0], numbers[-1])
            return RawBatch(taken, taken[-1][0], line_numbers=numbers)
        if self.pacing.stop_at_end:
            # the end of the file: its last line may lack a newline
            line, self._pending = self._pending, b""
            if line.strip():
                offset = self._position - len(line)
                return RawBatch([(offset, line)], offset, line_numbers=[self._pending_line])
            self._skipped(1 if line else 0)
            return None
        self._eof = False
        return None

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
        if not self.pacing.stop_at_end and not self._lines:
            return datetime.now(UTC) + timedelta(
                seconds=min(self.pacing.tick_s, TAIL_POLL_S))
        return None

    def snapshot(self) -> int:
        return self._position - len(self._pending)

    def close(self) -> None:
        if self._file is not sys.stdin.buffer:
            self._file.close()


def _read_past(stream: BinaryIO, position: int) -> tuple[int, int]:
    """Read and drop the first `position` bytes of a stream (those a run before applied,
    when the same stream is piped again); where it then is, and the number of the line
    there. A stream that ends sooner is at its end."""
    done = 0
    newlines = 0
    while done < position:
        chunk = stream.read(min(CHUNK_BYTES, position - done))
        if not chunk:
            break
        done += len(chunk)
        newlines += chunk.count(b"\n")
    return done, 1 + newlines


class JsonlSource(EventSource):
    """A JSONL file as one source partition, starting at a byte offset; or a stream
    (standard input as "-", a pipe), read from its start, whose first bytes up to that
    offset are read past.

    Its positions are stored under `source_id` (default: the file's resolved path), and a
    resume starts at the lowest line start every shard applied (read again, it is skipped
    as applied). `on_blank` is told how many blank lines were skipped, as they are read.
    The number of the line at the starting offset is counted from `line_mark` (a line start
    read before, see `connectors.line_numbers`), or from the file's start; `on_line_mark`
    is told a new mark every `LINE_MARK_BYTES` read.
    """

    def __init__(self, path: str | Path, *, start: int = 0, batch_lines: int = DEFAULT_BATCH_LINES,
                 tail: bool = False, tick_s: float = 1.0, until_ms: int | None = None,
                 idle_exit_s: float | None = None,
                 on_blank: Callable[[int], None] | None = None,
                 line_mark: LineMark | None = None,
                 on_line_mark: Callable[[LineMark], None] | None = None,
                 source_id: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(Pacing(batch_size=batch_lines, stop_at_end=not tail, tick_s=tick_s,
                                until_ms=until_ms, idle_exit_s=idle_exit_s),
                         {self.path.name: start})
        self.stream = is_stream(path)
        # a stream's resolved path names this process's pipe: the name given is what stays
        self.source_id = source_id or (("stdin" if str(path) in STDIN_PATHS else str(path))
                                       if self.stream else str(self.path.resolve()))
        self.on_blank = on_blank
        self.line_mark = line_mark
        self.on_line_mark = on_line_mark

    def resume(self, client: redis.Redis, prefix: str, shards: int) -> dict[str, int]:
        """Start after what every shard applied, numbering lines from the file's line mark
        in Redis; keep new marks there as the file is read."""
        starts = super().resume(client, prefix, shards)
        self.line_mark = load_line_mark(client, prefix, self.source_id)
        source_id = self.source_id

        def keep(mark: LineMark) -> None:
            save_line_mark(client, prefix, source_id, mark)

        self.on_line_mark = keep
        return starts

    def source_ids(self) -> dict[str, str]:
        return {self.path.name: self.source_id}

    def start_after(self, applied: int) -> int:
        return max(applied, 0)

    def build_partition(self, name: str, start: int) -> JsonlPartition:
        start = max(start, 0)
        pacing = self.pacing
        return JsonlPartition(self.path, start, pacing.batch_size, not pacing.stop_at_end,
                              pacing.tick_s, pacing.until_ms, pacing.idle_exit_s,
                              self.on_blank,
                              start_line=1 if self.stream else  # counted as it is read past
                              line_number_at(self.path, start, self.line_mark),
                              on_line_mark=self.on_line_mark, source_id=self.source_id)


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
            sync_to_disk(self._file.fileno())
        if self._on_write is not None:
            self._on_write(len(lines))

    def close(self) -> None:
        if not self._stdout:
            self._file.close()


class _FileCommands(CommandWriter):
    def __init__(self, path: str) -> None:
        self._out = _AppendedFile(path, None)

    def write(self, lines: list[bytes]) -> None:
        self._out.append(lines, durable=True)

    def close(self) -> None:
        self._out.close()


class JsonlCommandSink(CommandSink):
    """Appends command lines to a file or stdout ("-"), flushed (and fsynced for a file)
    before the engine drops them from its outbox."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)

    def open_writer(self) -> CommandWriter:
        return _FileCommands(self.path)


class _FileDeadLetters(DeadLetterWriter):
    def __init__(self, path: str) -> None:
        self._out = _AppendedFile(path, None)

    def write(self, dead: list[DeadLetter]) -> None:
        self._out.append([encode_dead_letter(d) for d in dead])

    def close(self) -> None:
        self._out.close()


class JsonlDeadLetterSink(DeadLetterSink):
    """Appends dead letters to a file (or stdout for "-"), one JSON object a line (see
    `encode_dead_letter`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def open_writer(self) -> DeadLetterWriter:
        return _FileDeadLetters(self.path)


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
