"""End-to-end latency of a live engine: an event appended to a file -> its message command.

`live_latency` starts `python -m engine run --clock wall --tail` in a subprocess on a
one-step journey (`ping`: every visit sends a push at once, `re_entry: always`), appends
visit events at a fixed rate stamped with the wall-clock time of the write, and tails the
commands file: a command's latency is the moment it is read minus its `caused_at`.

`python -m benchmarks.latency_bench --redis URL [--rate 1000 10000] [--seconds 8]`
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import orjson

from engine.storage.redis_client import connect
from engine.storage.store import delete_state

REPO = Path(__file__).resolve().parents[1]
PING_JOURNEY = """\
journey: ping
version: 1
description: Every visit sends a push at once; for latency measurements.
entry:
  event: visit
re_entry: always
steps:
  - id: ping
    actions:
      - send: push
        template: ping
"""
PACE_S = 0.01
IDLE_EXIT_S = 3.0
READY_TIMEOUT_S = 120.0
WARM_UP_CUSTOMER = "warm-up"


@dataclass(frozen=True)
class LatencyRow:
    """Latency from an event's time to the moment its command is read, in ms."""

    rate: int
    events: int
    commands: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    achieved_rate: float = 0.0
    """Events written per second of writing."""
    backlog: int = 0
    """Events without a command when the writer stopped."""
    drain_s: float = 0.0
    """Time from the writer's stop to the last command read (bounded by the drain limit)."""


class CommandTail:
    """Reads a growing commands file in a thread; records each command's latency."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.latencies_ms: list[float] = []
        self.warm_up_seen = threading.Event()
        self.last_seen = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="command-tail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    def _run(self) -> None:
        while not self.path.exists():
            if self._stop.wait(0.005):
                return
        with self.path.open("rb") as handle:
            pending = b""
            while True:
                chunk = handle.read(1 << 16)
                if not chunk:
                    if self._stop.wait(0.002):
                        return
                    continue
                seen = time.time()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._record(line, seen)

    def _record(self, line: bytes, seen: float) -> None:
        command = orjson.loads(line)
        if command.get("customer_id") == WARM_UP_CUSTOMER:
            self.warm_up_seen.set()
            return
        caused = datetime.fromisoformat(command["caused_at"]).timestamp()
        self.latencies_ms.append((seen - caused) * 1000.0)
        self.last_seen = seen


def _visit(index: int, customer: str, now_ms: int) -> bytes:
    return orjson.dumps({
        "event_id": f"lat{index:09d}", "customer_id": customer, "type": "visit",
        "ts": now_ms, "venue_id": "v01", "amount": 10.0,
    }) + b"\n"


def _percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(share * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _write_paced(out: IO[bytes], rate: int, seconds: float, customers: int) -> tuple[int, float]:
    """Append visits at `rate` per second for `seconds`; return (events, seconds taken)."""
    total = int(rate * seconds)
    written = 0
    began = time.monotonic()
    while written < total:
        elapsed = time.monotonic() - began
        target = min(total, int(rate * elapsed) + 1)
        if target > written:
            now_ms = int(time.time() * 1000)
            out.write(b"".join(_visit(i, f"c{i % customers:06d}", now_ms)
                               for i in range(written, target)))
            out.flush()
            written = target
        time.sleep(max(0.0, began + (elapsed // PACE_S + 1) * PACE_S - time.monotonic()))
    return written, time.monotonic() - began


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Wait up to `grace_s` for the engine to exit on its own, then terminate, then kill."""
    try:
        process.wait(timeout=grace_s)
        return
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def live_latency(journeys_dir: Path, redis_url: str, rate: int, seconds: float, *,
                 customers: int = 1000, drain_limit_s: float = 30.0) -> LatencyRow:
    """Latency percentiles of a wall-clock engine fed `rate` visits/s for `seconds`.

    `journeys_dir` receives `ping.yaml` and the run's files. Visits cycle over `customers`
    ids; `re_entry: always` and a journey that ends at its first step make every visit
    enter again, so each visit yields exactly one command.
    """
    journeys_dir.mkdir(parents=True, exist_ok=True)
    journey = journeys_dir / "ping.yaml"
    journey.write_text(PING_JOURNEY)
    run_id = uuid.uuid4().hex[:10]
    events = journeys_dir / f"events-{run_id}.jsonl"
    commands = journeys_dir / f"commands-{run_id}.jsonl"
    dead = journeys_dir / f"dead-{run_id}.jsonl"
    log = journeys_dir / f"engine-{run_id}.log"
    prefix = f"lb-{run_id}"
    events.write_bytes(b"")
    command = [
        sys.executable, "-m", "engine", "run", "--journeys", str(journey),
        "--events", str(events), "--commands", str(commands), "--clock", "wall", "--tail",
        "--tick", "0.05", "--idle-exit", str(IDLE_EXIT_S), "--redis", redis_url,
        "--prefix", prefix, "--shards", "4", "--dead-letter", str(dead),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    tail = CommandTail(commands)
    client = connect(redis_url)
    try:
        with log.open("wb") as log_file, events.open("ab") as out:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT)
            try:
                tail.start()
                out.write(_visit(0, WARM_UP_CUSTOMER, int(time.time() * 1000)))
                out.flush()
                deadline = time.monotonic() + READY_TIMEOUT_S
                while not tail.warm_up_seen.wait(0.05):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the engine did not start:\n"
                                           + log.read_text(errors="replace")[-2000:])
                written, write_s = _write_paced(out, rate, seconds, customers)
                stopped = time.time()
                backlog = max(0, written - tail.count)
                deadline = time.monotonic() + drain_limit_s
                while tail.count < written and time.monotonic() < deadline:
                    if process.poll() is not None:
                        break
                    time.sleep(0.01)
                drain_s = max(0.0, tail.last_seen - stopped) if tail.count else 0.0
            finally:
                _stop(process, IDLE_EXIT_S + 5.0)
                tail.stop()
    finally:
        delete_state(client, prefix)
        client.close()
    latencies = sorted(tail.latencies_ms)
    return LatencyRow(
        rate, written, len(latencies), _percentile(latencies, 0.50),
        _percentile(latencies, 0.99), latencies[-1] if latencies else 0.0,
        achieved_rate=written / write_s if write_s > 0 else 0.0, backlog=backlog,
        drain_s=drain_s)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rate", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--customers", type=int, default=1000)
    args = parser.parse_args(argv)
    print(f"{'rate':>7} {'achieved':>9} {'events':>7} {'commands':>8} {'backlog':>7} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'drain s':>7}")
    for rate in args.rate:
        with tempfile.TemporaryDirectory(prefix="latency-bench-") as scratch:
            row = live_latency(Path(scratch), args.redis, rate, args.seconds,
                               customers=args.customers)
        print(f"{row.rate:>7} {row.achieved_rate:>9.0f} {row.events:>7} {row.commands:>8} "
              f"{row.backlog:>7} {row.p50_ms:>8.1f} {row.p99_ms:>8.1f} {row.max_ms:>8.1f} "
              f"{row.drain_s:>7.2f}")


if __name__ == "__main__":
    main()
