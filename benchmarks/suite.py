"""The benchmark suite behind `python -m benchmarks`: one data set, every scenario, one table.

Each engine scenario runs `journeys run` as separate processes on the same events file and
the same Redis, so its peak RSS is its own; ratios compare rates measured in the same run.
"""

from __future__ import annotations

import itertools
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import bytewax.operators as op
import orjson
import redis
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.run import cli_main

from benchmarks.bytewax_native import run_bytewax_native
from benchmarks.delivery_bench import DeliveryFigures, kill_and_restart, throughput
from benchmarks.kafka_bench import (
    PARTITIONS,
    broker,
    kafka_ceiling,
    kafka_source,
    produce_events,
    skipped,
)
from benchmarks.latency_bench import live_latency
from benchmarks.naive import run_naive
from benchmarks.tansu import NoBrokerError
from benchmarks.timers_bench import timer_scaling
from connectors.jsonl import JsonlSource
from engine.app.generator import ChainConfig, write_jsonl
from engine.compiled_core import CORE_FORM, PURE_PYTHON_VARIABLE
from engine.core.state import CustomerState
from engine.flow.routing import BatchRouter, RunCounters
from engine.flow.runner import redis_endpoint
from engine.storage.redis_client import connect
from engine.storage.store import delete_matching

ROOT = Path(__file__).resolve().parents[1]
RUN_SUMMARY = re.compile(r"(?P<events>\d+) events, \d+ dead letters, (?P<commands>\d+) commands, "
                         r"\d+ journeys in (?P<seconds>[0-9.]+)s \(")
EXAMPLES = ROOT / "examples" / "journeys"
INERT = ROOT / "benchmarks" / "inert"
"""A journey no customer enters: the engine's fixed cost per event (see the file)."""


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    events: int
    seconds: float
    peak_rss_mb: float | None = None
    note: str = ""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class SuiteResult:
    rows: list[Row] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


class _CountingPartition(StatelessSinkPartition[object]):
    def __init__(self, counters: RunCounters) -> None:
        self._counters = counters

    def write_batch(self, items: list[object]) -> None:
        self._counters.add(commands=len(items))


class _CountingSink(DynamicSink[object]):
    def __init__(self, counters: RunCounters) -> None:
        self._counters = counters

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountingPartition:
        return _CountingPartition(self._counters)


def ceiling(events: Path, shards: int = 8) -> Row:
    """Reading, decoding and sharding the events through the dataflow, with no processing."""
    counters = RunCounters()
    router = BatchRouter(shards, "ceiling", counters=counters)
    flow = Dataflow("ceiling")
    raw = op.input("events", flow, JsonlSource(events))
    routed = op.flat_map("route", raw, router.route)
    op.output("count", routed, _CountingSink(counters))
    began = time.perf_counter()
    cli_main(flow)
    return Row("ceiling: read + decode + shard (no processing)", counters.events_read,
               time.perf_counter() - began, _self_rss_mb())


def _self_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def engine_run(source: Sequence[str], redis_url: str, prefix: str, processes: int = 1,
               journeys: Sequence[str] = (str(EXAMPLES),), label: str = "engine",
               pure_python: bool = False) -> Row:
    """`journeys run` in `processes` processes over `source` (the input and output
    options); events and commands as the processes report them, the slowest one's time.
    `pure_python`: run the Python source of the compiled core (the same code, not compiled)."""
    run = run_engine_processes(source, redis_url, prefix, processes, journeys,
                               pure_python=pure_python)
    noun = "process" if processes == 1 else "processes"
    form = ", Python source core" if pure_python else ""
    return Row(f"{label}, {processes} {noun}{form}", run.events, run.seconds, run.peak_rss_mb,
               f"{run.commands:,} commands")


@dataclass(frozen=True)
class EngineProcesses:
    """What the processes of one `journeys run` reported, and how long they took."""

    events: int
    commands: int
    seconds: float
    """The slowest process's own run time (start-up excluded), as it reports it."""
    wall_s: float
    """From starting the processes to the last one's exit."""
    peak_rss_mb: float


def run_engine_processes(source: Sequence[str], redis_url: str, prefix: str,
                         processes: int = 1, journeys: Sequence[str] = (str(EXAMPLES),),
                         *, pure_python: bool = False) -> EngineProcesses:
    """Run `journeys run` in `processes` processes (one cluster) over `source`."""
    base = [sys.executable, "-m", "engine", "run", "--journeys", *journeys, *source,
            "--redis", redis_url, "--prefix", prefix]
    if processes > 1:
        addresses = ",".join(f"127.0.0.1:{port}" for port in free_ports(processes))
        commands_list = [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]
    else:
        commands_list = [base]
    began = time.perf_counter()
    env = {**os.environ, PURE_PYTHON_VARIABLE: "1" if pure_python else ""}
    children = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                for c in commands_list]
    peak, seconds, events, commands = 0.0, 0.0, 0, 0
    for child in children:
        stderr = child.stderr.read().decode() if child.stderr else ""
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss / 1024)
        if child.returncode != 0:
            raise RuntimeError(f"journeys run failed ({child.returncode}): {stderr[-2000:]}")
        # the dataflow's own run time and counts, as the engine reports them (start-up
        # excluded); each process counts what its own workers read and wrote
        found = RUN_SUMMARY.search(stderr)
        if found is None:
            raise RuntimeError(f"journeys run printed no summary: {stderr[-2000:]}")
        events += int(found["events"])
        commands += int(found["commands"])
        seconds = max(seconds, float(found["seconds"]))
    return EngineProcesses(events, commands, seconds, time.perf_counter() - began, peak)


def jsonl_source(events: Path, workdir: Path, prefix: str) -> list[str]:
    """The `journeys run` options that read `events` and write files in `workdir`."""
    return ["--events", str(events), "--commands", str(workdir / f"{prefix}-commands.jsonl"),
            "--dead-letter", str(workdir / f"{prefix}-dead.jsonl")]


def redis_memory_per_customer(client: redis.Redis, prefix: str, shards: int = 8,
                              sample: int = 300) -> tuple[float, float]:
    """(mean MEMORY USAGE of sampled customer keys, customers) under `prefix`."""
    sizes: list[int] = []
    customers = 0
    for key in _state_keys(client, prefix, shards):
        customers += 1
        if len(sizes) < sample:
            sizes.append(int(client.memory_usage(key) or 0))
    return (sum(sizes) / len(sizes) if sizes else 0.0), customers


def _state_keys(client: redis.Redis, prefix: str, shards: int) -> Iterator[bytes]:
    """The customer state keys under `prefix`, shard by shard."""
    for shard in range(shards):
        yield from client.scan_iter(match=f"{{{prefix}:s{shard}}}:c:*", count=1000)


def cached_state_memory(client: redis.Redis, prefix: str, shards: int = 8,
                        sample: int = 2000) -> float:
    """Bytes of process memory per customer held in the engine's state cache: the sampled
    stored states decoded into a dict as the cache keeps them (tracemalloc)."""
    keys = list(itertools.islice(_state_keys(client, prefix, shards), sample))
    if not keys:
        return 0.0
    values = client.mget(keys)
    customer_ids = [key.decode().partition(":c:")[2] for key in keys]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = {cid: CustomerState.from_bytes(cid, value if isinstance(value, bytes) else None)
                 for cid, value in zip(customer_ids, values, strict=True)}
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return used / len(cache)


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as folder:
        yield Path(folder)


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; "
            f"{CORE_FORM.describe()}")


def decode_limit(events: Path) -> Row:
    """A plain loop decoding every line of the file with orjson: what any Python engine
    must pay per event before doing anything with it."""
    began = time.perf_counter()
    count = 0
    with events.open("rb") as lines:
        for line in lines:
            if line.strip():
                orjson.loads(line)
                count += 1
    return Row("decode limit: an orjson loop over the file", count,
               time.perf_counter() - began, _self_rss_mb())


def run_suite(customers: int, days: int, *, redis_url: str | None, pending: Sequence[int],
              rates: Sequence[int], latency_s: float, naive_limit_s: float,
              say: Callable[[str], None], kafka: str | None = None,
              deliveries: int = 0) -> SuiteResult:
    """Every scenario on one generated chain; `say` reports progress. `deliveries`: how
    many commands the delivery rows send (0: no delivery rows)."""
    result = SuiteResult()
    with _workdir() as work, redis_endpoint(redis_url) as url:
        client = connect(url)
        events = work / "events.jsonl"
        began = time.perf_counter()
        count = write_jsonl(ChainConfig(seed=7, customers=customers, days=days), events)
        say(f"generated {count:,} events ({customers:,} customers, {days} days) in "
            f"{time.perf_counter() - began:.1f}s")
        result.rows.append(decode_limit(events))
        say(f"decode limit: {result.rows[-1].events_per_s:,.0f} events/s")
        result.rows.append(ceiling(events))
        say(f"ceiling: {result.rows[-1].events_per_s:,.0f} events/s")
        tag = f"bench{time.time_ns()}"
        for processes in (1, 2):
            prefix = f"{tag}p{processes}"
            used_before = int(client.info("memory")["used_memory"])
            result.rows.append(engine_run(jsonl_source(events, work, prefix), url, prefix,
                                          processes))
            say(f"{result.rows[-1].scenario}: {result.rows[-1].events_per_s:,.0f} events/s")
            if processes == 1:
                one_process = result.rows[-1]
                per_key, stored = redis_memory_per_customer(client, prefix)
                used = int(client.info("memory")["used_memory"]) - used_before
                result.extra.append(
                    f"Redis memory per customer: {per_key:,.0f} B (MEMORY USAGE of sampled "
                    f"state keys); {used / max(stored, 1):,.0f} B (used_memory growth / "
                    f"{stored:,} customers, timers and aggregates included)")
                cached = cached_state_memory(client, prefix)
                result.extra.append(
                    f"process memory per cached customer: {cached:,.0f} B, "
                    f"{cached * 1e6 / 2**20:,.0f} MiB per million (decoded states as the "
                    f"state cache holds them, tracemalloc)")
            delete_matching(client, f"*{prefix}*")
        result.rows.append(_fixed_cost(events, work, url, tag, one_process, result, say))
        if CORE_FORM.compiled:  # the same code uncompiled, for the compiled core's ratio
            prefix = f"{tag}pure"
            source_row = engine_run(jsonl_source(events, work, prefix), url, prefix,
                                    pure_python=True)
            result.rows.append(source_row)
            say(f"{source_row.scenario}: {source_row.events_per_s:,.0f} events/s")
            delete_matching(client, f"*{prefix}*")
            result.extra.append(
                f"compiled core: {one_process.events_per_s / source_row.events_per_s:.2f}x "
                f"the rate of its Python source (engine, 1 process, this run)")
        result.rows.extend(_kafka_rows(events, url, kafka, tag, result, say))
        result.rows.extend(_baselines(events, url, work, naive_limit_s, say))
        result.rows.extend(_timer_rows(events, url, pending, say))
        result.extra.extend(_latency_lines(url, rates, latency_s, say))
        result.rows.extend(_delivery_rows(work / "delivery", deliveries, say))
        delete_matching(client, f"*{tag}*")
    return result


def _fixed_cost(events: Path, work: Path, url: str, tag: str, one_process: Row,
                result: SuiteResult, say: Callable[[str], None]) -> Row:
    """The engine in one process with a journey nobody enters: everything but journey
    work. Adds the journeys' share of the one-process time to `result.extra`."""
    prefix = f"{tag}inert"
    row = replace(engine_run(jsonl_source(events, work, prefix), url, prefix,
                             journeys=(str(INERT),)),
                  scenario="engine, 1 process, no journey entered (fixed cost)")
    say(f"{row.scenario}: {row.events_per_s:,.0f} events/s")
    delete_matching(connect(url), f"*{prefix}*")
    share = 1 - row.seconds / one_process.seconds if one_process.seconds > 0 else 0.0
    result.extra.append(
        f"journey work: {share:.0%} of the one-process time (the rest is the fixed cost per "
        f"event: decode, route, duplicates, profile, aggregates, durable commit, dataflow)")
    return row


DELIVERY = "delivery"
"""Scenario names starting with this are messages, not events: no ratios to the engine's."""
INGEST = "ingest"
"""Scenario names starting with this are the ingest service's (`benchmarks.ingest_bench`)."""
UNRELATED = (DELIVERY, INGEST)
"""Scenario names starting with these measure a service beside the engine: no ratios."""


def _delivery_rows(work: Path, commands: int, say: Callable[[str], None]) -> list[Row]:
    if not commands:
        return []
    sent = throughput(work / "throughput", commands)
    rows = [Row(f"{DELIVERY}: webhooks to a loopback receiver, SQLite ledger",
                sent.received, sent.seconds, None,
                f"messages/s; worker CPU {sent.cpu_ms_per_message:.2f} ms per message; "
                f"{sent.repeated_requests} repeated, {sent.lost} lost")]
    say(f"{rows[-1].scenario}: {sent.per_second:,.0f} messages/s")
    for after_crash in ("resend", "give_up"):
        killed = kill_and_restart(work / f"killed-{after_crash}", commands,
                                  after_crash=after_crash)
        rows.append(Row(f"{DELIVERY}: kill -9 at a third, restart, after_crash: {after_crash}",
                        killed.received, killed.seconds, None, kill_note(killed)))
        say(f"{rows[-1].scenario}: {kill_note(killed)}")
    return rows


def kill_note(killed: DeliveryFigures) -> str:
    """The kill -9 figures of one guarantee, in words."""
    return (f"{killed.commands:,} commands, {killed.distinct:,} delivered, "
            f"{killed.repeated_requests} repeated requests (same Idempotency-Key), "
            f"{killed.duplicate_messages} duplicate messages with the key honoured, "
            f"{killed.unknown} unknown ({killed.unknown_received} of them had arrived), "
            f"{killed.lost} lost; rate includes the restart")


def _kafka_rows(events: Path, url: str, bootstrap: str | None, tag: str,
                result: SuiteResult, say: Callable[[str], None]) -> list[Row]:
    """The Kafka ceiling and the engine Kafka to Kafka with one and two processes."""
    rows: list[Row] = []
    try:
        with broker(bootstrap) as address:
            produced = produce_events(address, events, tag)
            say(f"produced {produced.events:,} events to {PARTITIONS} partitions in "
                f"{produced.seconds:.1f}s")
            read, seconds = kafka_ceiling(address, produced.topic)
            rows.append(Row(f"Kafka ceiling: consume + decode + shard, {PARTITIONS} "
                            "partitions", read, seconds, _self_rss_mb()))
            say(f"{rows[-1].scenario}: {rows[-1].events_per_s:,.0f} events/s")
            for processes in (1, 2):
                prefix = f"{tag}k{processes}"
                rows.append(engine_run(kafka_source(address, produced.topic, prefix), url,
                                       prefix, processes, label="engine Kafka to Kafka"))
                say(f"{rows[-1].scenario}: {rows[-1].events_per_s:,.0f} events/s")
                delete_matching(connect(url), f"*{prefix}*")
    except NoBrokerError as exc:
        result.extra.append(skipped(say, exc))
    return rows


def _baselines(events: Path, url: str, work: Path, naive_limit_s: float,
               say: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    prefix = f"naive{time.time_ns()}"
    naive = run_naive(events, [str(EXAMPLES)], url, prefix, limit_s=naive_limit_s)
    rows.append(Row("naive baseline: per-event Redis, one key per timer", naive.events,
                    naive.seconds, _self_rss_mb(),
                    f"{naive.commands:,} commands"
                    + (f"; stopped after {naive_limit_s:.0f}s" if naive.seconds >= naive_limit_s
                       else "")))
    delete_matching(connect(url), f"*{prefix}*")
    say(f"naive: {rows[-1].events_per_s:,.0f} events/s")
    native = run_bytewax_native(events)
    rows.append(Row("Bytewax-native: lost regular, notify_at per customer", native.events,
                    native.seconds, _self_rss_mb(),
                    f"{native.commands:,} commands; one journey, state in Bytewax, no Redis"))
    say(f"bytewax-native: {rows[-1].events_per_s:,.0f} events/s")
    return rows


def _timer_rows(events: Path, url: str, pending: Sequence[int],
                say: Callable[[str], None]) -> list[Row]:
    if not pending:
        return []
    rows = []
    for timer_row in timer_scaling(events, [str(EXAMPLES)], url, pending):
        memory = (f"; {timer_row.bytes_per_timer:,.0f} B of Redis per pending timer"
                  if timer_row.pending else "")
        rows.append(Row(f"engine with {timer_row.pending:,} pending timers",
                        timer_row.events, timer_row.run_s, None,
                        f"preload {timer_row.preload_s:.1f}s{memory}; "
                        f"{timer_row.ratio:.2f}x of no pending timers"))
        say(f"{rows[-1].scenario}: {rows[-1].events_per_s:,.0f} events/s")
    return rows


def _latency_lines(url: str, rates: Sequence[int], seconds: float,
                   say: Callable[[str], None]) -> list[str]:
    if not rates:
        return []
    lines = []
    with _workdir() as work:
        for rate in rates:
            row = live_latency(work, url, rate, seconds)
            line = (f"live latency at {rate:,} events/s for {seconds:g}s (wall clock): "
                    f"p50 {row.p50_ms:,.0f} ms, p99 {row.p99_ms:,.0f} ms, max "
                    f"{row.max_ms:,.0f} ms; {row.commands:,} commands for {row.events:,} "
                    f"events (achieved {row.achieved_rate:,.0f} events/s, backlog "
                    f"{row.backlog:,} when the writer stopped)")
            lines.append(line)
            say(line)
    return lines


def format_table(result: SuiteResult) -> str:
    """The table: events/s, ratio to the ceiling and to each baseline, peak RSS."""
    by_name = {row.scenario.split(":")[0]: row for row in result.rows}
    file_ceiling = by_name.get("ceiling", Row("", 0, 1.0)).events_per_s
    kafka_ceiling_rate = by_name.get("Kafka ceiling", Row("", 0, 1.0)).events_per_s
    naive_rate = by_name.get("naive baseline", Row("", 0, 1.0)).events_per_s
    decode_rate = by_name.get("decode limit", Row("", 0, 1.0)).events_per_s
    native = next((r for r in result.rows if r.scenario.startswith("Bytewax-native")), None)
    native_rate = native.events_per_s if native else 0.0
    header = ("scenario", "events", "events/s", "vs decode limit", "vs ceiling", "vs naive",
              "vs Bytewax-native", "peak RSS", "note")
    rows = [header]
    for row in result.rows:
        rate = row.events_per_s
        # Kafka rows against the Kafka ceiling, the others against reading the file
        ceiling_rate = kafka_ceiling_rate if "Kafka" in row.scenario else file_ceiling
        if row.scenario.startswith(UNRELATED):
            rows.append((row.scenario, f"{row.events:,}", f"{rate:,.0f}", "-", "-", "-", "-",
                         "-", row.note))
            continue
        rows.append((
            row.scenario, f"{row.events:,}", f"{rate:,.0f}",
            f"{rate / decode_rate:.2f}x" if decode_rate else "-",
            f"{rate / ceiling_rate:.2f}x" if ceiling_rate else "-",
            f"{rate / naive_rate:.2f}x" if naive_rate else "-",
            f"{rate / native_rate:.2f}x" if native_rate else "-",
            f"{row.peak_rss_mb:,.0f} MB" if row.peak_rss_mb else "-", row.note,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for index, row_cells in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) if i in (0, 8) else c.rjust(widths[i])
                               for i, c in enumerate(row_cells)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", *result.extra])
