"""Drives events through the real dataflow against a real Redis, for integration tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from benchmarks.tansu import free_port
from connectors.delivery.channels.base import DeliveryResult
from connectors.delivery.service import DeliveryLedger, deliver
from connectors.delivery.templates import RenderedMessage
from engine.flow.runner import RunOptions, RunSummary, run_on
from engine.storage.redis_client import connect
from engine.storage.store import read_stats
from journeys_dsl.event_types import journey_vocabulary
from journeys_dsl.loader import load_journeys

REFERENCE_JOURNEYS = [str(Path(__file__).resolve().parents[2] / "examples" / "journeys")]
"""All ten reference journeys, those that read chain-wide aggregates included: commands
depend on event time alone, so interrupted runs, or runs split over processes, give the
same commands as one uninterrupted run."""

SCENARIO_SKEW_MS = 400 * 86_400_000
"""Scenarios leave customers weeks apart with no event in between: a wide allowed skew."""
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"
CET = timezone(timedelta(hours=1))
START = datetime(2025, 3, 3, 0, 0, tzinfo=CET)  # a Monday


def at(day: float, hour: int = 12, minute: int = 0) -> str:
    """ISO time `day` days after the scenario start, at a local (UTC+1) hour."""
    moment = START + timedelta(days=day) + timedelta(hours=hour, minutes=minute)
    return moment.isoformat()


def day_of(iso: str) -> float:
    """Days from the scenario start (midnight local) of an ISO timestamp."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (moment - START).total_seconds() / 86400


_counter = 0


def event(event_type: str, customer: str, when: str, **fields: Any) -> dict[str, Any]:
    global _counter
    _counter += 1
    return {"event_id": f"{customer}-{event_type}-{_counter}", "customer_id": customer,
            "type": event_type, "ts": when, **fields}


def visit(customer: str, when: str, amount: float = 40.0, venue: str = "v1",
          items: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    items = items if items is not None else [
        {"name": "pasta", "category": "mains", "price": amount}]
    return event("visit", customer, when, venue_id=venue, amount=amount, currency="EUR",
                 items=items, party_size=2, channel="dine-in", **fields)


def with_addresses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with a profile event that gives each customer an email address and a
    phone number, a minute before the customer's first event (unless that event is a
    profile with an email address already)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for item in events:
        customer = item.get("customer_id")
        if isinstance(customer, str) and customer not in seen:
            seen.add(customer)
            if item.get("type") == "profile" and "email" in item:
                out.append(item)
                continue
            before = datetime.fromisoformat(item["ts"]) - timedelta(minutes=1)
            out.append(event("profile", customer, before.isoformat(),
                             email=f"{customer}@example.com", phone="+4930123456"))
        out.append(item)
    return out


@dataclass
class Engine:
    """One engine state (a Redis key prefix) that several runs can share."""

    workdir: Path
    redis_url: str
    prefix: str
    journeys: list[str]
    shards: int = 4
    policies: str | None = None
    timeline_kept: int = 0
    addresses: bool = False
    """Give every customer of a run an email address and a phone number first (see
    `with_addresses`): a message to a customer with no address is not sent."""
    event_types: str | None = None
    """An event types file: declared types beside the built-in ones."""
    runs: int = 0
    summaries: list[RunSummary] = field(default_factory=list)

    def run(self, events: list[dict[str, Any]] | bytes, *, until: str | None = None,
            name: str | None = None, source_id: str | None = None) -> list[dict[str, Any]]:
        """Run the events through the dataflow; return the commands this run emitted."""
        self.runs += 1
        events_path = self.workdir / (name or f"events-{self.runs}.jsonl")
        if isinstance(events, bytes):
            events_path.write_bytes(events)
        else:
            events = with_addresses(events) if self.addresses else events
            events_path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        commands_path = self.workdir / f"commands-{self.runs}.jsonl"
        options = RunOptions(
            journeys=self.journeys, events=str(events_path), commands=str(commands_path),
            dead_letter=str(self.workdir / f"dead-{self.runs}.jsonl"), redis_url=self.redis_url,
            shards=self.shards, prefix=self.prefix, source_id=source_id,
            policies=self.policies,
            until_ms=int(datetime.fromisoformat(until).timestamp() * 1000) if until else None,
            batch_lines=7, max_skew_ms=SCENARIO_SKEW_MS, timeline_kept=self.timeline_kept,
            event_types=self.event_types,
        )
        vocabulary = journey_vocabulary(None, self.event_types) if self.event_types else None
        self.summaries.append(run_on(self.redis_url, options,
                                     load_journeys(self.journeys, vocabulary)))
        return read_jsonl(commands_path)

    def dead_letters(self, run: int | None = None) -> list[dict[str, Any]]:
        return read_jsonl(self.workdir / f"dead-{run or self.runs}.jsonl")

    def stats(self) -> Counter[str]:
        return read_stats(connect(self.redis_url), self.prefix, self.shards)


def run_processes(arguments: list[str], processes: int,
                  timeout_s: float = 240.0) -> list[int]:
    """`python -m engine ARGUMENTS` as a cluster of `processes` processes on loopback (one
    process: no cluster flags); their exit codes."""
    root = Path(__file__).resolve().parents[2]
    base = [sys.executable, "-m", "engine", *arguments]
    if processes == 1:
        commands = [base]
    else:
        addresses = ",".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
        commands = [[*base, "-a", addresses, "-i", str(index)] for index in range(processes)]
    running = [subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL)
               for command in commands]
    try:
        return [process.wait(timeout_s) for process in running]
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()


def kill_when(command: list[str], ready: Callable[[], bool], *, poll_s: float,
              env: dict[str, str] | None = None, limit_s: float = 120) -> bool:
    """Run `command` and SIGKILL it as soon as `ready()` holds, asked every `poll_s`;
    whether it was killed (not: it ended, or `limit_s` passed, first)."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env)
    deadline = time.monotonic() + limit_s
    killed = False
    while child.poll() is None and time.monotonic() < deadline:
        if ready():
            child.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(poll_s)
    child.wait(timeout=60)
    return killed


def commands_by_id(delivered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The delivered commands by id; a command_id delivered again (a restart after a crash
    resends what its outbox held) must carry the same command each time."""
    by_id: dict[str, dict[str, Any]] = {}
    for item in delivered:
        previous = by_id.setdefault(item["command_id"], item)
        assert previous == item, "a repeated command_id must carry the same command"
    return by_id


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def sends(commands: list[dict[str, Any]], customer: str | None = None) -> list[tuple[str, int]]:
    """(step, whole day after the scenario start) of each command, in order of sending."""
    chosen = [c for c in commands if customer is None or c["customer_id"] == customer]
    chosen.sort(key=lambda c: (c["send_at"], c["step"]))
    return [(c["step"], int(day_of(c["send_at"]))) for c in chosen]


def sends_per_command(commands: list[dict[str, Any]], ledger_path: Path) -> Counter[str]:
    """How often `deliver`, through a ledger at `ledger_path`, hands each command_id to a
    channel (every channel answers "delivered")."""
    sent: Counter[str] = Counter()

    class Counting:
        def send(self, command: dict[str, Any], message: object) -> DeliveryResult:
            sent[command["command_id"]] += 1
            return DeliveryResult("delivered", "ok")

    class Plain:
        def render(self, command: dict[str, Any]) -> RenderedMessage:
            return RenderedMessage(None, command["template"], None)

    channels = {name: Counting() for name in ("email", "sms", "push", "whatsapp")}
    with DeliveryLedger(ledger_path) as ledger:
        deliver(commands, Plain(), channels, ledger, sleep=lambda _: None)
    return sent
