"""A file appended to after a crash mid-write: the partial last line is cut off first."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from connectors.appending import open_for_append, repair_torn_tail, sync_to_disk
from connectors.jsonl import JsonlCommandSink, JsonlDeadLetterSink, _AppendedFile
from engine.core.records import DeadLetter


def test_a_partial_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "commands.jsonl"
    whole = orjson.dumps({"command_id": "a"}) + b"\n"
    path.write_bytes(whole + b'{"command_id": "b", "voucher_expi')
    out = _AppendedFile(str(path), None)
    out.append([orjson.dumps({"command_id": "b"}) + b"\n"])
    out.close()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["command_id"] for line in lines] == ["a", "b"]


def test_a_file_that_is_only_a_fragment_becomes_empty(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(b'{"reason": "x", "raw"')
    assert repair_torn_tail(path) == len(b'{"reason": "x", "raw"')
    assert path.read_bytes() == b""


def test_complete_files_and_missing_files_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"{}\n{}\n")
    assert repair_torn_tail(path) == 0
    assert path.read_bytes() == b"{}\n{}\n"
    assert repair_torn_tail(tmp_path / "missing.jsonl") == 0
    assert not (tmp_path / "missing.jsonl").exists()


def test_a_fragment_longer_than_one_scan_is_found(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"first\n" + b"x" * 200_000)
    with open_for_append(path) as file:
        file.write(b"second\n")
    assert path.read_bytes() == b"first\nsecond\n"


def test_commands_and_dead_letters_can_be_discarded_to_dev_null() -> None:
    """/dev/null is a device: fsync refuses it (EINVAL), and there is nothing to sync."""
    sink = JsonlCommandSink(os.devnull).open_writer()
    sink.write([orjson.dumps({"command_id": "a"}) + b"\n"])
    sink.close()
    letters = JsonlDeadLetterSink(os.devnull).open_writer()
    letters.write([DeadLetter(reason="not valid JSON", raw=b"{", position=0,
                              source="events.jsonl")])
    letters.close()


def test_syncing_a_pipe_is_nothing_to_do() -> None:
    read_end, write_end = os.pipe()
    try:
        sync_to_disk(write_end)  # a pipe holds nothing to sync: no error
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_failure_to_sync_a_regular_file_is_raised(tmp_path: Path) -> None:
    path = tmp_path / "commands.jsonl"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError, match="Bad file descriptor"):
        sync_to_disk(fd)  # closed: EBADF is not swallowed
