"""The JSONL source numbers its lines as an editor does, whatever the chunk and batch sizes,
and from a starting offset in the middle of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

import connectors.jsonl
from connectors.jsonl import JsonlPartition
from connectors.line_numbers import line_number_at
from engine.core.records import LineMark, RawBatch

CONTENT = b'{"a":1}\n\n{"b":22}\r\n   \n{"c":333}\n{"d":4444}\n\n\n{"e":5}'
"""Blank and whitespace lines, a CRLF line, and a last line with no newline."""


def expected(start: int = 0) -> list[tuple[int, int, bytes]]:
    """(byte offset, line number, line) of every line that is not blank, from `start`."""
    out, offset = [], 0
    for number, line in enumerate(CONTENT.split(b"\n"), 1):
        if line.strip() and offset >= start:
            out.append((offset, number, line.rstrip(b"\r")))
        offset += len(line) + 1
    return out


def read_all(partition: JsonlPartition) -> list[RawBatch]:
    batches: list[RawBatch] = []
    try:
        while True:
            batches.extend(partition.next_batch())
    except StopIteration:
        partition.close()
    return batches


@pytest.mark.parametrize("chunk", [3, 7, 1 << 20])
@pytest.mark.parametrize("batch_lines", [1, 2, 100])
def test_lines_are_numbered_across_chunks_and_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, batch_lines: int) -> None:
    monkeypatch.setattr(connectors.jsonl, "CHUNK_BYTES", chunk)
    path = tmp_path / "events.jsonl"
    path.write_bytes(CONTENT)
    batches = read_all(JsonlPartition(path, 0, batch_lines, False, 1.0, None, None))
    read = [(offset, number, line) for batch in batches
            for (offset, line), number in zip(batch.lines, batch.line_numbers or [], strict=True)]
    assert read == expected()


@pytest.mark.parametrize("start", [0, 8, 9, 19, 23, 33, 44, 45, 46])
def test_a_partition_started_mid_file_numbers_on(tmp_path: Path, start: int) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(CONTENT)
    assert CONTENT[start - 1:start] in (b"", b"\n")  # a line start
    first = line_number_at(path, start)
    batches = read_all(JsonlPartition(path, start, 2, False, 1.0, None, None, start_line=first))
    read = [(offset, number, line) for batch in batches
            for (offset, line), number in zip(batch.lines, batch.line_numbers or [], strict=True)]
    assert read == expected(start)


def test_marks_are_reported_as_the_file_is_read(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connectors.jsonl, "LINE_MARK_BYTES", 10)
    path = tmp_path / "events.jsonl"
    path.write_bytes(CONTENT)
    marks: list[LineMark] = []
    read_all(JsonlPartition(path, 0, 1, False, 1.0, None, None, on_line_mark=marks.append))
    assert len(marks) >= 2
    assert [m.offset for m in marks] == sorted({m.offset for m in marks})
    assert all(line_number_at(path, m.offset) == m.line for m in marks)
