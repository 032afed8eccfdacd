"""Events read from a stream: standard input ("-", /dev/stdin) or a named pipe.

A stream cannot be read from a byte position. A run reads it from its start and reads past
what the runs before it applied, so piping the same stream again after a stop (or a longer
one that begins with it) applies only what is new, as a resumed file would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.app.generator import ChainConfig, generate_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = str(ROOT / "examples" / "journeys")
CHAIN = ChainConfig(seed=11, customers=60, days=90)


def _lines() -> list[bytes]:
    lines = [orjson.dumps(event) for event in generate_events(CHAIN)]
    lines.insert(len(lines) * 3 // 4, b'{"event_id": "broken", not json')  # a dead letter
    return lines


def _run(events: str, out: Path, redis_url: str, prefix: str, *, stdin: bytes | None = None,
         ) -> subprocess.CompletedProcess[bytes]:
    """`journeys run` over `events`, commands and dead letters appended to files in `out`."""
    return subprocess.run(
        [sys.executable, "-m", "engine", "run", "--journeys", JOURNEYS, "--events", events,
         "--commands", str(out / "commands.jsonl"), "--dead-letter", str(out / "dead.jsonl"),
         "--redis", redis_url, "--prefix", prefix, "--shards", "3", "--batch-lines", "97"],
        input=stdin, capture_output=True, timeout=240, check=False)


def _outputs(out: Path) -> tuple[bytes, list[dict[str, Any]]]:
    commands = (out / "commands.jsonl").read_bytes()
    dead = [orjson.loads(line) for line in (out / "dead.jsonl").read_bytes().splitlines()]
    return commands, [{k: d[k] for k in ("reason", "line", "position")} for d in dead]


def test_standard_input_gives_what_the_file_gives(tmp_path: Path, redis_url: str,
                                                  key_prefix: str) -> None:
    lines = _lines()
    data = b"\n".join(lines) + b"\n"
    events = tmp_path / "events.jsonl"
    events.write_bytes(data)
    (tmp_path / "file").mkdir()
    (tmp_path / "stdin").mkdir()
    assert _run(str(events), tmp_path / "file", redis_url, key_prefix + "f").returncode == 0
    piped = _run("-", tmp_path / "stdin", redis_url, key_prefix + "s", stdin=data)
    assert piped.returncode == 0, piped.stderr
    assert _outputs(tmp_path / "stdin") == _outputs(tmp_path / "file")
    assert _outputs(tmp_path / "file")[1][0]["line"] == len(lines) * 3 // 4 + 1


def test_piped_again_it_applies_only_what_is_new(tmp_path: Path, redis_url: str,
                                                 key_prefix: str) -> None:
    """The first part piped, then the whole stream: the commands and dead letters of one
    run over the file, as when a file grows between two runs."""
    lines = _lines()
    half = len(lines) // 2
    grown = tmp_path / "grown.jsonl"
    (tmp_path / "file").mkdir()
    (tmp_path / "stdin").mkdir()
    grown.write_bytes(b"\n".join(lines[:half]) + b"\n")
    assert _run(str(grown), tmp_path / "file", redis_url, key_prefix + "f").returncode == 0
    grown.write_bytes(b"\n".join(lines) + b"\n")
    assert _run(str(grown), tmp_path / "file", redis_url, key_prefix + "f").returncode == 0

    first = _run("-", tmp_path / "stdin", redis_url, key_prefix + "s",
                 stdin=b"\n".join(lines[:half]) + b"\n")
    assert first.returncode == 0, first.stderr
    second = _run("/dev/stdin", tmp_path / "stdin", redis_url, key_prefix + "s",
                  stdin=b"\n".join(lines) + b"\n")  # another name of the same input
    assert second.returncode == 0, second.stderr
    read = int(re.search(rb"(\d+) events, ", second.stderr).group(1))  # type: ignore[union-attr]
    assert read <= len(lines) - half + 1  # what was new, and the last line applied, again
    assert _outputs(tmp_path / "stdin") == _outputs(tmp_path / "file")


def test_a_named_pipe(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    lines = _lines()
    data = b"\n".join(lines) + b"\n"
    events = tmp_path / "events.jsonl"
    events.write_bytes(data)
    (tmp_path / "file").mkdir()
    (tmp_path / "fifo").mkdir()
    assert _run(str(events), tmp_path / "file", redis_url, key_prefix + "f").returncode == 0
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = _run(str(fifo), tmp_path / "fifo", redis_url, key_prefix + "p")
    writer.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert _outputs(tmp_path / "fifo") == _outputs(tmp_path / "file")
