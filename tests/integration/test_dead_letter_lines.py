"""Dead letters of a file name the input's line (1-based, blank lines counted) besides its
byte offset: across batches, shards, processes, and runs that resume from a saved position."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

import connectors.jsonl
from connectors.line_numbers import line_number_at
from engine.app.generator import ChainConfig, generate_events
from engine.core.records import LineMark
from engine.flow.runner import RunOptions, run_on
from engine.storage.line_marks import load_line_mark
from journeys_dsl.loader import load_journeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = [str(ROOT / "examples" / "journeys")]
CHAIN = ChainConfig(seed=4, customers=80, days=60)


def chain_lines() -> list[bytes]:
    return [orjson.dumps(event) for event in generate_events(CHAIN)]


def with_bad_lines(lines: list[bytes], every: int, tag: str) -> tuple[list[bytes], set[int]]:
    """`lines` with a bad line after every `every`-th: in turn a line that is not JSON, a
    blank line (skipped, not a dead letter), an absurd amount, and a copy of an applied
    event; and the 1-based numbers of the lines that must become dead letters."""
    out: list[bytes] = []
    bad: set[int] = set()
    visits = [line for line in lines if b'"type":"visit"' in line]
    for index, line in enumerate(lines):
        out.append(line)
        if index % every != every - 1:
            continue
        kind = (index // every) % 4
        if kind == 0:
            out.append(b'{"event_id": "' + tag.encode() + b'", not json')
        elif kind == 1:
            out.append(b"   ")
            continue
        elif kind == 2:
            visit = orjson.loads(visits[index % len(visits)])
            visit.update(event_id=f"{tag}-{index}", amount=10_000_000)
            out.append(orjson.dumps(visit))
        else:
            out.append(lines[index // 2])
        bad.add(len(out))
    return out, bad


def journeys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


def run_args(events: Path, dead: Path, redis_url: str, prefix: str) -> list[str]:
    return ["run", "--journeys", *JOURNEYS, "--events", str(events), "--commands",
            str(dead.with_suffix(".commands")), "--dead-letter", str(dead), "--redis",
            redis_url, "--prefix", prefix, "--shards", "2", "--batch-lines", "37"]


def dead_letters(path: Path, events: Path) -> list[dict[str, Any]]:
    """The dead letters written, each checked against the file: its line number and its
    byte offset both point at its raw input."""
    content = events.read_bytes()
    lines = content.split(b"\n")
    letters = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    for letter in letters:
        raw = letter["raw"].encode()
        assert lines[letter["line"] - 1] == raw, letter
        assert content[letter["position"]:].startswith(raw + b"\n"), letter
    return letters


def events_read(stderr: str) -> int:
    found = re.search(r"(\d+) events, ", stderr)
    assert found, stderr
    return int(found.group(1))


def test_two_shards_small_batches(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    lines, bad = with_bad_lines(chain_lines(), 23, "bad")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    dead = tmp_path / "dead.jsonl"
    result = journeys(*run_args(events, dead, redis_url, key_prefix), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    letters = dead_letters(dead, events)
    assert sorted(letter["line"] for letter in letters) == sorted(bad)
    reasons = " ".join(letter["reason"] for letter in letters)
    assert "not valid JSON" in reasons and "amount" in reasons and "applied" in reasons


def test_a_resumed_run_counts_on_from_the_saved_position(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    lines, bad = with_bad_lines(chain_lines(), 19, "late")
    half = len(lines) // 2
    while not lines[half - 1].startswith(b'{"event_id":"e'):  # part one ends on an event
        half += 1
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines[:half]) + b"\n")
    first = journeys(*run_args(events, tmp_path / "first.jsonl", redis_url, key_prefix),
                     cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(d["line"] for d in dead_letters(tmp_path / "first.jsonl", events)) \
        == sorted(n for n in bad if n <= half)

    with events.open("ab") as file:
        file.write(b"\n".join(lines[half:]) + b"\n")
    second = journeys(*run_args(events, tmp_path / "second.jsonl", redis_url, key_prefix),
                      cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert events_read(second.stderr) <= len(lines) - half + 1  # resumed, not re-read
    assert sorted(d["line"] for d in dead_letters(tmp_path / "second.jsonl", events)) \
        == sorted(n for n in bad if n > half)


def test_a_resume_counts_from_the_line_mark_the_run_saved(
        tmp_path: Path, redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    monkeypatch.setattr(connectors.jsonl, "LINE_MARK_BYTES", 4096)
    lines, bad = with_bad_lines(chain_lines(), 17, "marked")
    half = len(lines) * 2 // 3
    while not lines[half - 1].startswith(b'{"event_id":"e'):
        half += 1
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines[:half]) + b"\n")
    plans = load_journeys(JOURNEYS)

    def run(dead: Path) -> None:
        run_on(redis_url, RunOptions(
            journeys=JOURNEYS, events=str(events), commands=str(dead.with_suffix(".c")),
            dead_letter=str(dead), prefix=key_prefix, shards=2, batch_lines=29), plans)

    run(tmp_path / "first.jsonl")
    client = redis.Redis.from_url(redis_url)
    mark = load_line_mark(client, key_prefix, str(events.resolve()))
    client.close()
    assert mark is not None and mark.offset > 4096
    assert line_number_at(events, mark.offset) == mark.line
    with events.open("ab") as file:
        file.write(b"\n".join(lines[half:]) + b"\n")
    run(tmp_path / "second.jsonl")
    assert sorted(d["line"] for d in dead_letters(tmp_path / "second.jsonl", events)) \
        == sorted(n for n in bad if n > half)


def test_two_processes(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    lines, bad = with_bad_lines(chain_lines(), 31, "cluster")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    dead = tmp_path / "dead.jsonl"
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
    children = [subprocess.Popen(
        [sys.executable, "-m", "engine", *run_args(events, dead, redis_url, key_prefix),
         "-i", str(i), "-a", addresses], cwd=tmp_path, stderr=subprocess.PIPE)
        for i in range(2)]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()
    assert sorted(d["line"] for d in dead_letters(dead, events)) == sorted(bad)


def test_line_number_at_counts_from_a_mark_either_way(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"a\n\nbb\nccc\n\ndddd\n")
    starts = [0, 2, 3, 6, 10, 11]  # lines 1 to 6
    for number, offset in enumerate(starts, 1):
        assert line_number_at(path, offset) == number
        for mark_number, mark_offset in enumerate(starts, 1):
            assert line_number_at(path, offset, LineMark(mark_offset, mark_number)) == number
    # a mark taken as true: the count goes on from its number
    assert line_number_at(path, 10, LineMark(3, 1000)) == 1002
    # a mark that is no line start of this file is ignored
    assert line_number_at(path, 10, LineMark(4, 1000)) == 5
    assert line_number_at(path, 10, LineMark(99, 1000)) == 5
