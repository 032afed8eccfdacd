"""A file appended to after a crash mid-write: the partial last line is cut off first."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors.appending import open_for_append, repair_torn_tail
from connectors.jsonl import _AppendedFile


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
