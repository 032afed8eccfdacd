"""Line marks of input files in Redis, so a run resuming mid-file numbers its lines without
reading the file from its start (see `connectors.line_numbers`).

    PREFIX:lines    hash: source id -> "<byte offset> <line number>" of a line start read

A mark is a fact about the file, not about what was applied: it is written as the source
reads, outside the shards' transactions, and a lost or stale one only costs a longer count
(a mark that is not a line start of the file is ignored).
"""

from __future__ import annotations

import redis

from engine.core.records import LineMark


def line_marks_key(prefix: str) -> str:
    return f"{prefix}:lines"


def load_line_mark(client: redis.Redis, prefix: str, source_id: str) -> LineMark | None:
    """The last mark saved for `source_id`, or None (none saved, or not one)."""
    value = client.hget(line_marks_key(prefix), source_id)
    if value is None:
        return None
    try:
        offset, line = (int(part) for part in value.split())
    except ValueError:
        return None
    return LineMark(offset, line) if offset >= 0 and line >= 1 else None


def save_line_mark(client: redis.Redis, prefix: str, source_id: str, mark: LineMark) -> None:
    """Keep `mark` as `source_id`'s line mark."""
    client.hset(line_marks_key(prefix), source_id, f"{mark.offset} {mark.line}")
