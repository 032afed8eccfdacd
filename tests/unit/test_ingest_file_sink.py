"""A failed write to the ingest file leaves nothing of the failed request behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A child process whose files may not grow past 2,000 bytes: request B does not fit.
CHILD = """
import asyncio, resource, signal, sys
from connectors.ingest.batch import Accepted
from connectors.ingest.file_sink import FileSink
from connectors.ingest.sink import StoreFailed

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

def events(name, count, size):
    return [Accepted(n, f"{name}{n}", "c1", (f'{{"event_id":"{name}{n}"}}' + " " * size).encode())
            for n in range(count)]

async def main():
    sink = FileSink(sys.argv[1])
    await sink.store(events("a", 3, 300))
    try:
        await sink.store(events("b", 10, 300))
        print("b stored")
    except StoreFailed:
        print("b refused")
    await sink.store(events("c", 1, 10))
    await sink.close()

asyncio.run(main())
"""


def test_a_request_answered_503_leaves_no_line_behind(tmp_path: Path) -> None:
    file = tmp_path / "events.jsonl"
    done = subprocess.run([sys.executable, "-c", CHILD, str(file)], cwd=ROOT, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "b refused"
    ids = [line.split('"')[3] for line in file.read_text().splitlines()]
    assert ids == ["a0", "a1", "a2", "c0"]
