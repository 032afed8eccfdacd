"""The ingest load test: `journeys ingest` on loopback, driven by concurrent keep-alive
clients, to the file sink and to Kafka.

For each sink, two phases on one server process: single events (one JSON event per
request) and batches of 100 (NDJSON). Each phase is bounded by a request count and a time
limit, whichever comes first; every request must be answered 200. The figures: requests and
events per second over the phase, and the 50th and 99th percentile of the request latency
as the client saw it. The clients run in this process, the server in its own, on the same
cores: on a small machine the clients' CPU is part of what is measured, so the server's own
CPU time per request is given too (user and system time of its process, from /proc).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from benchmarks.ingest_process import ingest_process, write_sources
from benchmarks.kafka_bench import PARTITIONS, broker, skipped
from benchmarks.suite import INGEST, Row
from benchmarks.tansu import NoBrokerError, create_topics
from engine.app.generator import ChainConfig, generate_events

__all__ = ["PHASES", "IngestFigures", "Phase", "ingest_rows", "load"]

CLIENTS = 8
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Phase:
    """One load shape: events per request, and the bounds of the phase."""

    label: str
    batch: int
    max_requests: int
    limit_s: float


PHASES = (Phase("single events", 1, 3_000, 15.0), Phase("batches of 100", 100, 300, 15.0))


@dataclass(frozen=True)
class IngestFigures:
    """What one phase measured."""

    requests: int
    events: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, share: float) -> float:
        """The latency under which `share` of the requests were answered."""
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[round(share * 100) - 1]


def load(url: str, api_key: str, bodies: Sequence[bytes], events_per_body: int,
         clients: int = CLIENTS, limit_s: float = 15.0) -> IngestFigures:
    """Send `bodies` to `url`/events from `clients` keep-alive connections until all are
    sent or `limit_s` has passed; raise if any answer is not 200."""
    return asyncio.run(_load(url, api_key, bodies, events_per_body, clients, limit_s))


async def _load(url: str, api_key: str, bodies: Sequence[bytes], events_per_body: int,
                clients: int, limit_s: float) -> IngestFigures:
    content_type = "application/json" if events_per_body == 1 else NDJSON
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": content_type}
    latencies: list[float] = []
    next_body = iter(bodies)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=60.0) as client:
        began = time.perf_counter()
        deadline = began + limit_s

        async def send() -> None:
            for body in next_body:
                sent = time.perf_counter()
                answer = await client.post("/events", content=body)
                if answer.status_code != 200:
                    raise RuntimeError(f"ingest answered {answer.status_code}: "
                                       f"{answer.text[:300]}")
                done = time.perf_counter()
                latencies.append((done - sent) * 1000)
                if done >= deadline:
                    return

        await asyncio.gather(*(send() for _ in range(clients)))
        seconds = time.perf_counter() - began
    return IngestFigures(len(latencies), len(latencies) * events_per_body, seconds,
                         tuple(latencies))


def _bodies(lines: Sequence[bytes], phase: Phase) -> list[bytes]:
    chunks = [lines[i:i + phase.batch] for i in range(0, len(lines), phase.batch)]
    return [b"\n".join(chunk) for chunk in chunks if len(chunk) == phase.batch]


def ingest_rows(work: Path, redis_url: str, bootstrap: str | None,
                say: Callable[[str], None], customers: int = 2_000) -> list[Row]:
    """Both phases to the file sink, then to a Kafka topic (a Tansu broker unless
    `bootstrap` is given); the Kafka rows are left out, with a line said, without a broker."""
    work.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps(event) for event in
             generate_events(ChainConfig(seed=7, customers=customers, days=365))]
    sources = write_sources(work)
    rows: list[Row] = []
    tag = uuid.uuid4().hex[:8]
    out = work / "ingested.jsonl"
    with ingest_process(sources, redis_url, f"ingestbench{tag}f", ["--events-out", str(out)],
                        work / "ingest-file.log") as server:
        rows.extend(_phases(server.url, server.process.pid, sources.api_key, lines,
                            "file, fsync", say))
    try:
        with broker(bootstrap) as address:
            topic = f"ingest-{tag}"
            create_topics(address, {topic: PARTITIONS})
            with ingest_process(sources, redis_url, f"ingestbench{tag}k",
                                ["--kafka", address, "--events-topic", topic],
                                work / "ingest-kafka.log") as server:
                rows.extend(_phases(server.url, server.process.pid, sources.api_key, lines,
                                    f"Kafka acks=all, {PARTITIONS} partitions", say))
    except NoBrokerError as exc:
        skipped(say, exc)
    return rows


def _phases(url: str, pid: int, api_key: str, lines: Sequence[bytes], sink: str,
            say: Callable[[str], None]) -> list[Row]:
    rows = []
    start = 0
    for phase in PHASES:
        wanted = phase.max_requests * phase.batch
        bodies = _bodies(lines[start:start + wanted], phase)
        start += wanted
        cpu_before = process_cpu_s(pid)
        figures = load(url, api_key, bodies, phase.batch, limit_s=phase.limit_s)
        cpu_ms = (process_cpu_s(pid) - cpu_before) * 1000 / max(figures.requests, 1)
        rows.append(Row(f"{INGEST}: {sink}, {phase.label}", figures.events, figures.seconds,
                        None, f"{figures.requests_per_s:,.0f} requests/s, p50 "
                              f"{figures.percentile_ms(0.5):.1f} ms, p99 "
                              f"{figures.percentile_ms(0.99):.1f} ms, server CPU "
                              f"{cpu_ms:.2f} ms per request, {CLIENTS} keep-alive clients"))
        say(f"{rows[-1].scenario}: {rows[-1].events_per_s:,.0f} events/s; {rows[-1].note}")
    return rows


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of process `pid` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
