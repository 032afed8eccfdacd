"""Runs the dataflow once over an events file: the engine behind `journeys run` and `demo`."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import redis
from bytewax.run import cli_main

from connectors.flow_sink import CommandSink, DeadLetterSink
from connectors.flow_source import EventSource, Pacing
from connectors.jsonl import JsonlCommandSink, JsonlDeadLetterSink, JsonlSource
from connectors.kafka import KafkaSource
from connectors.kafka_config import load_settings, topic_partitions
from connectors.kafka_sinks import KafkaCommandSink, KafkaDeadLetterSink
from connectors.nats_client import close as close_nats
from connectors.nats_client import connect as connect_nats
from connectors.nats_client import ensure_stream
from connectors.nats_sinks import NatsCommandSink, NatsDeadLetterSink
from connectors.nats_source import NatsSource
from engine.core.catalog import Catalog
from engine.core.declared_events import install as install_event_types
from engine.errors import JourneysError
from engine.flow.dataflow import FlowConfig, build_flow
from engine.flow.routing import ClockMode, RunCounters
from engine.run_defaults import (
    DEFAULT_BATCH_LINES,
    DEFAULT_CACHE_CUSTOMERS,
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_NATS_EVENTS_STREAM,
    DEFAULT_NATS_OUTPUTS_STREAM,
    TIMELINE_KEPT,
)
from engine.scoring.kernels import warm_up
from engine.scoring.model import DEFAULT_MODEL, ScoreModel, load_model
from engine.storage.embedded_redis import EmbeddedRedis
from engine.storage.redis_client import connect
from engine.storage.store import (
    LayoutError,
    StateStoreError,
    check_shard_count,
    record_layout,
)
from engine.storage.versions import sync_versions
from journeys_dsl.event_types import journey_vocabulary, load_event_types
from journeys_dsl.loader import load_journeys
from journeys_dsl.plan import JourneyPlan
from journeys_dsl.policies import load_policies
from journeys_dsl.segments import load_segments
from journeys_dsl.vocabulary import Vocabulary

log = logging.getLogger(__name__)

START_TIMEOUT_S = 3.0
"""How long Redis may take to answer at start; one that does not was never there."""


@dataclass(frozen=True)
class KafkaOptions:
    """Kafka topics to read events from and write commands and dead letters to."""

    bootstrap: str
    events_topic: str
    commands_topic: str
    dead_letter_topic: str
    until_end: bool = False
    """Stop when every partition reaches the end it had at start (a replay)."""
    config_file: str | None = None
    """librdkafka settings (key=value lines); `JOURNEYS_KAFKA_*` variables override them."""


@dataclass(frozen=True)
class NatsOptions:
    """NATS JetStream subjects to read events from and publish commands and dead letters
    to; a subject left out is read or written as a file instead (--events, --commands,
    --dead-letter)."""

    url: str
    events_subject: str | None = None
    commands_subject: str | None = None
    dead_letter_subject: str | None = None
    events_stream: str = DEFAULT_NATS_EVENTS_STREAM
    """The stream the events subject is added to when no stream holds it (created if
    missing)."""
    outputs_stream: str = DEFAULT_NATS_OUTPUTS_STREAM
    """The stream the commands and dead-letter subjects are added to when no stream holds
    them (created if missing)."""
    until_end: bool = False
    """Stop once the events subject's last message at start is read (a replay)."""


@dataclass(frozen=True)
class RunOptions:
    """A run of the engine: where events come from (a file, Kafka or NATS), where commands
    and dead letters go, where the state lives, and how events are applied."""

    journeys: Sequence[str]
    events: str
    segments: str | None = None
    """The segments file; None for the defaults shipped with the engine."""
    scores: str | None = None
    """Score model parameters written by `journeys fit`; None for the defaults."""
    policies: str | None = None
    """Frequency caps, quiet hours and consent; None: no cap, no quiet hours, opt-out."""
    process_id: int | None = None
    """With `addresses`: this process's index in a cluster of dataflow processes."""
    addresses: tuple[str, ...] = ()
    """host:port of every process of the cluster, the same list in each process."""
    commands: str = "-"
    dead_letter: str = "dead-letter.jsonl"
    redis_url: str | None = None
    state_dir: str | None = None
    clock: ClockMode = "event"
    shards: int = 8
    prefix: str = "je"
    source_id: str | None = None
    until_ms: int | None = None
    workers: int = 1
    batch_lines: int = DEFAULT_BATCH_LINES
    tail: bool = False
    tick_s: float = 1.0
    idle_exit_s: float | None = None
    kafka: KafkaOptions | None = None
    """Read and write Kafka instead of files; shards = the events topic's partitions."""
    nats: NatsOptions | None = None
    """Read or write NATS JetStream subjects instead of files."""
    max_skew_ms: int | None = None
    """How far ahead of its source's clock an event may be; None: a week on the event
    clock, a day on the wall clock."""
    max_amount: float = DEFAULT_MAX_AMOUNT
    """The largest visit amount accepted; larger ones go to the dead letters."""
    dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS
    """How long, in a customer's event time, an applied event id is refused again."""
    cache_customers: int = DEFAULT_CACHE_CUSTOMERS
    """Committed customer states the process keeps decoded in memory."""
    timeline_kept: int = TIMELINE_KEPT
    """Events and messages kept per customer for the console (0: no timeline)."""
    telemetry: str | None = None
    """`console`, `otlp` or `none`; None: as JOURNEYS_TELEMETRY says."""
    event_types: str | None = None
    """The event types file (declared types beside the built-in ones); None: none."""


@dataclass(frozen=True)
class RunSummary:
    events_read: int
    dead_letters: int
    commands: int
    seconds: float
    journeys: int
    blank_lines: int = 0
    """Blank (or whitespace-only) lines of the events file, skipped."""

    @property
    def events_per_s(self) -> float:
        return self.events_read / self.seconds if self.seconds > 0 else 0.0


@contextlib.contextmanager
def redis_endpoint(url: str | None, state_dir: str | None = None) -> Iterator[str]:
    """The given Redis URL, or an embedded server started for the duration of the block."""
    if url:
        yield url
        return
    with EmbeddedRedis(data_dir=state_dir) as server:
        yield server.url


def run(options: RunOptions, plans: Sequence[JourneyPlan] | None = None,
        score_model: ScoreModel | None = None) -> RunSummary:
    """Run the journeys over the events file and return the run's totals."""
    if plans is None:
        plans = load_journeys(options.journeys,
                              journey_vocabulary(options.segments, options.event_types))
    with redis_endpoint(options.redis_url, options.state_dir) as url:
        return run_on(url, options, plans, score_model)


COLLECTOR_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's thresholds while the dataflow runs (Python's are 700, 10, 10).

A run's heap is mostly the cache of customer states, which hold no reference cycles and live
until evicted. With Python's thresholds the collector ran 627 young passes and 5 full ones
over the 4,000-customer chain, 0.59 s in all (about 7 % of the run), and each full pass
walked every cached state: 55 ms there, and in proportion to the cache (the full passes are
what a live run's p99 sees). With these, 4 young passes and no full one: 0.11 s."""


@contextlib.contextmanager
def long_lived_heap() -> Iterator[None]:
    """Within the block, the cyclic collector leaves alone what is loaded before it (the
    journeys, compiled kernels, the dataflow runtime: frozen, never scanned again) and runs
    at `COLLECTOR_THRESHOLDS`; both are undone after it."""
    gc.collect()
    gc.freeze()  # full passes over it paused a live run for 70-85 ms at a time
    thresholds = gc.get_threshold()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def run_on(url: str, options: RunOptions, plans: Sequence[JourneyPlan],
           score_model: ScoreModel | None = None) -> RunSummary:
    """Run against the Redis server at `url`."""
    event_types = load_event_types(options.event_types)
    install_event_types(event_types)
    client = connect(url)
    catalog = Catalog(plans)
    counters = RunCounters()
    pacing = Pacing(batch_size=options.batch_lines, stop_at_end=not options.tail,
                    tick_s=options.tick_s, until_ms=options.until_ms,
                    idle_exit_s=options.idle_exit_s)
    kafka_settings = _kafka_settings(options.kafka)
    source: EventSource
    if options.kafka is not None:
        source, shards = _kafka_source(client, options, options.kafka, kafka_settings, pacing)
    else:
        shards = options.shards
        check_shard_count(client, options.prefix, shards)
        if options.nats is not None and options.nats.events_subject:
            source = _nats_source(options.nats, options.nats.events_subject, pacing)
        else:
            source = JsonlSource(options.events, batch_lines=options.batch_lines,
                                 tail=options.tail, tick_s=options.tick_s,
                                 until_ms=options.until_ms, idle_exit_s=options.idle_exit_s,
                                 source_id=options.source_id,
                                 on_blank=lambda n: counters.add(blank=n))
    starts = source.resume(client, options.prefix, shards)
    log.info("reading %s from positions %s", ", ".join(source.source_ids().values()), starts)
    commands_sink, dead_letter_sink = _sinks(options, kafka_settings)
    config = FlowConfig(
        redis_url=url, prefix=options.prefix, shards=shards, clock=options.clock,
        workers=options.workers * max(len(options.addresses), 1),
        max_skew_ms=options.max_skew_ms, max_amount=options.max_amount,
        dedup_window_ms=options.dedup_window_ms, cache_customers=options.cache_customers,
        timeline_kept=options.timeline_kept, telemetry=options.telemetry)
    sync_versions(client, options.prefix, catalog, Vocabulary().with_event_types(event_types))
    if score_model is None:
        score_model = load_model(options.scores) if options.scores else DEFAULT_MODEL
    warm_up()
    flow = build_flow(source, commands_sink, dead_letter_sink, config, catalog, counters,
                      score_model, load_segments(options.segments),
                      load_policies(options.policies))
    began = time.perf_counter()
    with long_lived_heap():
        if options.addresses:
            cli_main(flow, workers_per_process=options.workers,
                     process_id=options.process_id, addresses=list(options.addresses))
        else:
            cli_main(flow, workers_per_process=options.workers)
    # from the dataflow's start: a process of a cluster that joins before the first one
    # listens retries after a second (timely's fixed pause), which is start-up, not work
    seconds = time.perf_counter() - (counters.started or began)
    client.close()
    return RunSummary(counters.events_read, counters.dead_letters, counters.commands, seconds,
                      len(catalog.current), counters.blank_lines)


def run_through_outages(url: str, options: RunOptions, plans: Sequence[JourneyPlan],
                        score_model: ScoreModel | None = None, *, outage_limit_s: float = 300.0,
                        say: Callable[[str], None] = log.warning) -> RunSummary:
    """`run_on`, started again whenever the connection to Redis is lost, once it answers.

    A Redis that does not answer at start is a mistake, not an outage: JourneysError at once.
    A run that loses Redis stops; nothing it had not committed counts. The next run resumes
    from the positions committed in Redis and writes the outbox's commands first, so the
    result equals an uninterrupted run (commands may repeat, never go missing).
    """
    check_redis(url)
    restarts = 0
    while True:
        try:
            summary = run_on(url, options, plans, score_model)
        except Exception as exc:
            if not redis_outage(exc):
                raise
            restarts += 1
            say(f"lost the connection to Redis ({_first_line(exc)}); waiting for it "
                f"(up to {outage_limit_s:.0f}s), then resuming (restart {restarts})")
            wait_for_redis(url, outage_limit_s)
            continue
        return summary


def redis_outage(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is a lost Redis connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, redis.ConnectionError | redis.TimeoutError):
            return True
        if "redis.exceptions.ConnectionError" in str(current):
            return True  # the dataflow runtime reports Python errors as text
        current = current.__cause__ or current.__context__
    return False


def check_redis(url: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Return if `url` is a Redis URL and the server answers PING; else JourneysError."""
    try:
        client = connect(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise JourneysError(f"{_safe(url)!r} is not a Redis URL ({_first_line(exc)}); give "
                            "one like redis://localhost:6379/0") from None
    except (redis.RedisError, OSError) as exc:  # a cluster client connects at once
        raise _not_answering(url, exc) from None
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise _not_answering(url, exc) from None
    finally:
        client.close()


def _not_answering(url: str, exc: BaseException) -> JourneysError:
    return JourneysError(f"Redis at {_safe(url)} does not answer ({_first_line(exc)}): "
                         "start it, or give the right URL with --redis")


def wait_for_redis(url: str, limit_s: float) -> None:
    """Return when Redis answers PING; raise StateStoreError after `limit_s` seconds."""
    deadline = time.monotonic() + limit_s
    delay = 0.1
    while True:
        try:
            client = connect(url, socket_connect_timeout=1, socket_timeout=2)
            try:
                if client.ping():
                    return
            finally:
                client.close()
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() >= deadline:
            raise StateStoreError(
                f"Redis at {_safe(url)} did not answer for {limit_s:.0f}s (--outage-limit): "
                "once it is back, run the same command again to resume")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]


def _safe(url: str) -> str:
    """The URL without credentials, for messages."""
    scheme, separator, rest = url.partition("://")
    return f"{scheme}{separator}{rest.rpartition('@')[2]}" if separator else url


def check_partition_count(client: redis.Redis, prefix: str, topic: str, partitions: int) -> None:
    """Record the events topic's partition count on first use; refuse another one later."""
    stored = record_layout(client, prefix, "partitions", partitions)
    if stored != partitions:
        raise LayoutError(
            f"the state under prefix {prefix!r} was written from {stored} Kafka partitions, "
            f"but topic {topic!r} has {partitions}; customers would move between shards. "
            "Use a topic with the same partition count, or a new --prefix")
    check_shard_count(client, prefix, partitions)


def _kafka_settings(kafka: KafkaOptions | None) -> dict[str, str]:
    return load_settings(kafka.bootstrap, kafka.config_file) if kafka is not None else {}


def _kafka_source(client: redis.Redis, options: RunOptions, kafka: KafkaOptions,
                  settings: dict[str, str], pacing: Pacing) -> tuple[EventSource, int]:
    """The events topic, after checking the topics and the stored layout; shards = its
    partitions."""
    counts = topic_partitions(settings, [kafka.events_topic, kafka.commands_topic,
                                         kafka.dead_letter_topic])
    partitions = counts[kafka.events_topic]
    check_partition_count(client, options.prefix, kafka.events_topic, partitions)
    source = KafkaSource(settings, kafka.events_topic, dict.fromkeys(range(partitions), -1),
                         pacing=replace(pacing, stop_at_end=kafka.until_end))
    return source, partitions


def _nats_source(nats: NatsOptions, subject: str, pacing: Pacing) -> NatsSource:
    """The events subject, in the stream that holds it (created if none does)."""
    stream = _nats_stream(nats.url, nats.events_stream, [subject])
    return NatsSource(nats.url, stream, subject,
                      pacing=replace(pacing, stop_at_end=nats.until_end))


def _nats_stream(url: str, name: str, subjects: list[str]) -> str:
    client = connect_nats(url)
    try:
        return ensure_stream(client, name, subjects)
    finally:
        close_nats(client)


def _sinks(options: RunOptions, kafka_settings: dict[str, str]
           ) -> tuple[CommandSink, DeadLetterSink]:
    """Where the run's commands and dead letters go: Kafka topics, NATS subjects or files."""
    if options.kafka is not None:
        return (KafkaCommandSink(kafka_settings, options.kafka.commands_topic),
                KafkaDeadLetterSink(kafka_settings, options.kafka.dead_letter_topic))
    nats = options.nats
    subjects = [s for s in (nats.commands_subject, nats.dead_letter_subject) if s] \
        if nats is not None else []
    if nats is not None and subjects:
        _nats_stream(nats.url, nats.outputs_stream, subjects)
    commands: CommandSink = JsonlCommandSink(options.commands)
    dead: DeadLetterSink = JsonlDeadLetterSink(options.dead_letter)
    if nats is not None and nats.commands_subject:
        commands = NatsCommandSink(nats.url, nats.commands_subject)
    if nats is not None and nats.dead_letter_subject:
        dead = NatsDeadLetterSink(nats.url, nats.dead_letter_subject)
    return commands, dead
