"""The delivery benchmark: `journeys deliver` sending webhooks to a receiver on loopback.

Two figures, each from real processes:

- **throughput**: messages per second the receiver gets, from its first request to its
  last, for a file of due commands (SQLite ledger, the default concurrency);
- **kill -9**: the worker killed with SIGKILL a third of the way through, then started
  again under the same worker id, once per `after_crash` guarantee. The receiver honours
  `Idempotency-Key` like a webhook receiver: its logs say how many requests repeated a key
  (what a provider without idempotency turns into duplicate messages) and how many
  messages it made twice; the dead letters say which outcomes are `unknown`; a command
  neither received nor recorded `unknown` is lost.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SECRET_ENV = "BENCH_WEBHOOK_SECRET"


@dataclass(frozen=True)
class DeliveryFigures:
    """What one benchmark phase measured."""

    commands: int
    received: int
    distinct: int
    seconds: float
    """From the receiver's first request to its last."""
    worker_cpu_s: float = 0.0
    """User and system CPU time of the worker processes."""
    messages: int = 0
    """Messages the receiver made: requests less those whose key it had seen."""
    distinct_messages: int = 0
    unknown: int = 0
    """Commands dead-lettered as `unknown` (a send the kill interrupted, not made again)."""
    unknown_received: int = 0
    """Of the `unknown` ones, how many had reached the receiver."""
    lost: int = 0
    """Commands that neither reached the receiver nor were recorded `unknown`."""

    @property
    def per_second(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_message(self) -> float:
        """Worker CPU per message received: a figure less bent by a loaded machine."""
        return 1000 * self.worker_cpu_s / self.received if self.received else 0.0

    @property
    def repeated_requests(self) -> int:
        """Requests whose `Idempotency-Key` the receiver had seen already."""
        return self.received - self.distinct

    @property
    def duplicate_messages(self) -> int:
        """Messages made twice although the receiver honours the key (0 unless it fails to)."""
        return self.messages - self.distinct_messages


@contextmanager
def receiver(work: Path) -> Iterator[tuple[str, Path]]:
    """A `benchmarks.http_receiver` process: its URL and its keys file (the messages file
    is `receiver.messages` next to it)."""
    port_file, keys = work / "receiver.port", work / "receiver.keys"
    messages = work / "receiver.messages"
    for old in (port_file, keys, messages):
        old.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.http_receiver",
                                "--port-file", str(port_file), "--keys", str(keys),
                                "--messages", str(messages)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark's HTTP receiver did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}/hook", keys
    finally:
        process.terminate()
        process.wait(timeout=10)


def write_inputs(work: Path, url: str, commands: int, after_crash: str = "resend") -> Path:
    """Templates, config and a commands file of `commands` due webhook commands; the
    folder of the config."""
    template = work / "templates" / "bench"
    template.mkdir(parents=True, exist_ok=True)
    (template / "en.txt").write_text("Hello {{ first_name }}, {{ points }} points",
                                     encoding="utf-8")
    (work / "delivery.yaml").write_text(
        f"channels:\n  webhook: {{url: \"{url}\", secret_env: {SECRET_ENV}, "
        f"after_crash: {after_crash}}}\n",
        encoding="utf-8")
    with (work / "commands.jsonl").open("wb") as out:
        for number in range(commands):
            out.write(orjson.dumps({
                "command_id": f"bench-{number:07d}", "customer_id": f"c{number:07d}",
                "journey": "bench", "channel": "webhook", "template": "bench",
                "language": "en", "to": None, "vars": {"first_name": "Ada", "points": number},
                "send_at": "2025-03-03T10:00:00.000Z"}) + b"\n")
    return work


def worker(work: Path, ledger: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`journeys deliver` over the benchmark's inputs, as its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "connectors.delivery.service",
         "--commands", str(work / "commands.jsonl"),
         "--config", str(work / "delivery.yaml"), "--templates", str(work / "templates"),
         "--events-out", str(work / "events.jsonl"), "--dead-letter", str(work / "dead.jsonl"),
         "--ledger", str(ledger), *extra],
        cwd=ROOT, env={**os.environ, SECRET_ENV: "bench-secret"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen[bytes], timeout_s: float,
            allowed: tuple[int, ...] = (0,)) -> None:
    try:
        _out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"journeys deliver ran past {timeout_s:g}s") from None
    if process.returncode not in allowed:
        raise RuntimeError(f"journeys deliver exited {process.returncode}: "
                           f"{err.decode(errors='replace')[-500:]}")


def _children_cpu_s() -> float:
    """CPU time of the child processes reaped so far (the receiver is reaped last)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line] if path.exists() else []


def _received(keys: Path, commands: int, seconds: float, cpu_s: float,
              dead: Path | None = None) -> DeliveryFigures:
    lines = _lines(keys)
    arrived = set(lines)
    messages = _lines(keys.with_name("receiver.messages"))
    unknown = {str(record["command_id"]).encode() for record in map(orjson.loads, _lines(dead))
               if record.get("status") == "unknown"} if dead is not None else set()
    return DeliveryFigures(commands, len(lines), len(Counter(lines)), seconds, cpu_s,
                           messages=len(messages), distinct_messages=len(set(messages)),
                           unknown=len(unknown), unknown_received=len(unknown & arrived),
                           lost=commands - len(arrived | unknown))


def _timed_count(keys: Path) -> int:
    return keys.read_bytes().count(b"\n") if keys.exists() else 0


def throughput(work: Path, commands: int, timeout_s: float = 600.0,
               after_crash: str = "resend") -> DeliveryFigures:
    """Messages per second from the first request the receiver saw to its last; with
    `give_up` each send costs one more ledger write (the attempted mark)."""
    work.mkdir(parents=True, exist_ok=True)
    with receiver(work) as (url, keys):
        write_inputs(work, url, commands, after_crash)
        cpu_before = _children_cpu_s()
        process = worker(work, work / "throughput.sqlite")
        first = last = None
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            seen = _timed_count(keys)
            if seen and first is None:
                first = time.monotonic()
            if seen >= commands:
                last = time.monotonic()
                break
            time.sleep(0.005)
        _finish(process, max(deadline - time.monotonic(), 1.0))
        last = last or time.monotonic()
        return _received(keys, commands, last - (first or last),
                         _children_cpu_s() - cpu_before)


KILL_BATCH = 400
"""The kill phase's `--batch`: a third of 3,000 or 1,500 commands is then in the middle of
a batch (with the default 500 it is a batch's end, where little is in flight)."""


def kill_and_restart(work: Path, commands: int, timeout_s: float = 600.0,
                     after_crash: str = "resend") -> DeliveryFigures:
    """SIGKILL the worker a third of the way through, restart it, count what arrived and
    what was recorded `unknown`."""
    work.mkdir(parents=True, exist_ok=True)
    ledger = work / "killed.sqlite"
    for old in (ledger, work / "dead.jsonl", work / "events.jsonl"):
        old.unlink(missing_ok=True)
    with receiver(work) as (url, keys):
        write_inputs(work, url, commands, after_crash)
        began = time.monotonic()
        cpu_before = _children_cpu_s()
        flags = ("--worker-id", "bench-worker", "--batch", str(KILL_BATCH))
        process = worker(work, ledger, *flags)
        deadline = began + timeout_s
        while _timed_count(keys) < commands // 3:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker ended before it could be killed")
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        # exit status 1: something was dead-lettered, the `unknown` ones with give_up
        _finish(worker(work, ledger, *flags),
                max(deadline - time.monotonic(), 1.0), (0, 1))
        return _received(keys, commands, time.monotonic() - began,
                         _children_cpu_s() - cpu_before, work / "dead.jsonl")
