"""Kafka faults: the broker going away mid-run, and kill -9 of the engine, lose no command.

Both tests run `python -m engine run --kafka ...` against a real Tansu broker and Redis
and demand what an uninterrupted run gives: the same set of command_ids on the commands
topic, a repeated command_id always with the same content (at-least-once), and each
command sent once by the delivery side's ledger.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
import redis
from confluent_kafka import Consumer, Message, TopicPartition
from harness import REFERENCE_JOURNEYS, sends_per_command
from kafka_broker import free_port, new_topics, produce, tansu_broker
from tcp_proxy import TcpProxy, Watch

from engine.app.generator import ChainConfig, generate_events
from engine.flow.runner import RunOptions, run_on
from engine.storage.store import delete_matching
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = REFERENCE_JOURNEYS
CHAIN = ChainConfig(seed=23, customers=2000, days=120, start="2025-01-01")
UNTIL = "2025-05-02T00:00:00+00:00"
PARTITIONS = 4
SMALL_FETCHES = {
    "JOURNEYS_KAFKA_FETCH_MAX_BYTES": "65536",
    "JOURNEYS_KAFKA_MESSAGE_MAX_BYTES": "65536",
    "JOURNEYS_KAFKA_MAX_PARTITION_FETCH_BYTES": "16384",
    "JOURNEYS_KAFKA_QUEUED_MAX_MESSAGES_KBYTES": "64",
    "JOURNEYS_KAFKA_FETCH_QUEUE_BACKOFF_MS": "5",
}
"""Engine settings that make it read a few hundred events a batch: the run commits and
writes commands twenty-odd times instead of a handful, so faults land between many."""
OUTAGE_S = 3.0
"""How long each outage lasts: one at start-up, one at 10% of the expected commands on the
topic, and one at 50% just after a Produce request reached the broker, unanswered."""
KILL_AT = tuple(round(0.1 * step, 1) for step in range(1, 10))
"""Nine kill points: when the commands topic holds 10%, 20% ... 90% of the expected count
(repeats included). The 2nd, 4th ... once the engine's next Produce request reached the
broker, unanswered (stored there, never acknowledged in the outbox); the others 0, 20 or
40 ms later, across a batch's read, commit and write. Each restart resumes from what the
killed run committed."""


@pytest.fixture(scope="module")
def chain_lines() -> list[tuple[str, bytes]]:
    return [(str(e["customer_id"]), orjson.dumps(e)) for e in generate_events(CHAIN)]


@pytest.fixture(scope="module")
def expected(chain_lines: list[tuple[str, bytes]], redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """The uninterrupted run's commands by command_id (a JSONL run of the same events)."""
    folder = tmp_path_factory.mktemp("clean")
    events, commands = folder / "events.jsonl", folder / "commands.jsonl"
    events.write_bytes(b"".join(line + b"\n" for _, line in chain_lines))
    prefix = f"t-{uuid.uuid4().hex[:8]}-clean"
    until_ms = int(datetime.fromisoformat(UNTIL).timestamp() * 1000)
    try:
        run_on(redis_url, RunOptions(
            journeys=JOURNEYS, events=str(events), commands=str(commands),
            dead_letter=str(folder / "dead.jsonl"), redis_url=redis_url, shards=PARTITIONS,
            prefix=prefix, until_ms=until_ms), load_journeys(JOURNEYS))
        by_id = {c["command_id"]: c for c in map(orjson.loads, commands.read_bytes().splitlines())}
        assert len(by_id) > 1000
        yield by_id
    finally:
        client = redis.Redis.from_url(redis_url)
        delete_matching(client, f"*{prefix}*")
        client.close()


def start_engine(bootstrap: str, names: dict[str, str], redis_url: str, prefix: str,
                 log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`journeys run` Kafka to Kafka until the end of the events topic, as a process."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--journeys", *JOURNEYS,
         "--redis", redis_url, "--prefix", prefix, "--kafka", bootstrap,
         "--events-topic", names["events"], "--commands-topic", names["commands"],
         "--dead-letter-topic", names["dead"], "--kafka-until-end", "--until", UNTIL],
        cwd=ROOT, env={**os.environ, **SMALL_FETCHES}, stdout=log, stderr=log)


class Watcher:
    """Counts the messages on a topic as they arrive (repeats included)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        # a short reconnect backoff: after an outage it sees new messages before the engine
        # has got far
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": "watcher", "enable.auto.commit": False,
            "fetch.wait.max.ms": 10, "reconnect.backoff.max.ms": 100, "log_level": 2})
        self._consumer.assign([TopicPartition(topic, 0, 0)])
        self.count = 0

    def wait_for(self, count: int, child: subprocess.Popen[bytes], timeout_s: float) -> bool:
        """Whether the topic reached `count` messages while `child` was still running."""
        deadline = time.monotonic() + timeout_s
        while child.poll() is None and time.monotonic() < deadline:
            if self.count >= count:
                return True
            self.count += sum(1 for m in self._consumer.consume(1000, 0.005)
                              if m.error() is None)
        return False

    def close(self) -> None:
        self._consumer.close()


PRODUCE = 0
"""The Kafka API key of a Produce request."""


class RequestFrames:
    """Follows the Kafka requests in a client's byte stream (each an int32 size, then an
    int16 API key): `feed` gives the API key of each request that starts in a chunk."""

    def __init__(self) -> None:
        self._pending = b""
        self._left = 0

    def feed(self, data: bytes) -> list[int]:
        data, self._pending = self._pending + data, b""
        keys: list[int] = []
        at = 0
        while at < len(data):
            if self._left:
                step = min(self._left, len(data) - at)
                self._left -= step
                at += step
            elif len(data) - at < 6:
                self._pending = data[at:]
                break
            else:
                size, key = struct.unpack_from(">ih", data, at)
                keys.append(key)
                self._left = 4 + size
        return keys


class ProduceCut:
    """Once armed, mutes the proxy as soon as a Produce request has gone through it: the
    broker stores the batch, the producer never hears so (until the proxy's next stop)."""

    def __init__(self) -> None:
        self.proxy: TcpProxy | None = None
        self._armed = threading.Event()
        self._done = threading.Event()

    def watch(self) -> Watch:
        frames = RequestFrames()

        def on_chunk(data: bytes) -> None:
            if PRODUCE in frames.feed(data) and self._armed.is_set() and self.proxy:
                self.proxy.mute()
                self._armed.clear()
                self._done.set()
        return on_chunk

    def cut(self, child: subprocess.Popen[bytes], timeout_s: float = 10.0) -> bool:
        """Arm, and return once a Produce request went unanswered (False: `child` ended or
        none came within `timeout_s`); the broker has stored its batch meanwhile."""
        self._done.clear()
        self._armed.set()
        deadline = time.monotonic() + timeout_s
        while not self._done.wait(0.01):
            if child.poll() is not None or time.monotonic() > deadline:
                self._armed.clear()
                return False
        time.sleep(0.2)
        return True


@contextmanager
def proxied_broker(lines: list[tuple[str, bytes]]
                   ) -> Iterator[tuple[TcpProxy, ProduceCut, dict[str, str], Watcher]]:
    """A Tansu broker that clients reach only through a proxy (it advertises the proxy),
    with fresh topics, `lines` produced to the events topic in small record batches (small
    fetches), and a watcher on the commands topic."""
    proxy_port = free_port()
    cut = ProduceCut()
    with tansu_broker(advertised_port=proxy_port) as direct, \
            TcpProxy(int(direct.rpartition(":")[2]), proxy_port, watch=cut.watch) as proxy:
        cut.proxy = proxy
        names = new_topics(proxy.address, PARTITIONS)
        produce(proxy.address, names["events"], lines, **{"batch.size": 16384})
        watcher = Watcher(proxy.address, names["commands"])
        try:
            yield proxy, cut, names, watcher
        finally:
            watcher.close()


def headers_of(message: Message) -> dict[str, bytes]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v.encode() if isinstance(v, str) else v or b"" for k, v in pairs}


def read_topic(bootstrap: str, topic: str,
               quiet_s: float = 1.0) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Every message of a one-partition topic, (key, value, headers), read until nothing new
    came for `quiet_s` (Tansu's high watermark misses the last record batch's records)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s:
            for message in consumer.consume(1000, 0.1):
                assert message.error() is None, message.error()
                out.append((message.key(), message.value() or b"", headers_of(message)))
                last = time.monotonic()
    finally:
        consumer.close()
    return out


def check_commands(produced: list[tuple[bytes | None, bytes, dict[str, bytes]]],
                   expected: dict[str, dict[str, Any]], ledger_path: Path) -> int:
    """Assert the topic holds exactly the expected commands, repeats identical, and that
    delivery sends each once; return how many repeats the topic held."""
    by_id: dict[str, bytes] = {}
    for key, value, headers in produced:
        command_id = headers["command_id"].decode()
        previous = by_id.setdefault(command_id, value)
        assert previous == value, f"{command_id} repeated with other content"
        command = orjson.loads(value)
        assert command["command_id"] == command_id
        assert key == str(command["customer_id"]).encode()
    assert set(by_id) == set(expected), (
        f"missing {len(set(expected) - set(by_id))}, extra {len(set(by_id) - set(expected))}")
    assert all(orjson.loads(by_id[key]) == expected[key] for key in expected)

    sent = sends_per_command([orjson.loads(value) for _, value, _ in produced], ledger_path)
    assert set(sent) == set(expected) and max(sent.values()) == 1
    return len(produced) - len(by_id)


def finish(child: subprocess.Popen[bytes], timeout_s: float, log_path: Path) -> int:
    """The engine's exit code, failing the test if it does not end within `timeout_s`."""
    try:
        return child.wait(timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the engine did not finish within {timeout_s:.0f}s: {log_tail(log_path)}")


def stop_process(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
        child.wait(10)


def log_tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if "Connection refused" not in line)[-3000:]


@pytest.mark.timeout(90)
def test_broker_outages_mid_run_lose_nothing(
        chain_lines: list[tuple[str, bytes]], expected: dict[str, dict[str, Any]],
        redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    with proxied_broker(chain_lines) as (proxy, cut, names, watcher):
        log_path = tmp_path / "engine.log"
        outages: list[float] = []

        def outage() -> None:
            stopped = time.monotonic()
            proxy.stop()
            time.sleep(OUTAGE_S)
            proxy.start()
            outages.append(time.monotonic() - stopped)

        began = time.monotonic()
        with log_path.open("wb") as log:
            proxy.stop()  # away when the engine starts
            child = start_engine(proxy.address, names, redis_url, key_prefix, log)
        try:
            time.sleep(OUTAGE_S)
            proxy.start()
            outages.append(time.monotonic() - began)
            for share in (0.1, 0.5):
                reached = watcher.wait_for(int(share * len(expected)), child, 60)
                assert reached, f"the run ended before {share:.0%}: {log_tail(log_path)}"
                if share == 0.5:  # the broker takes a batch of commands, then goes away
                    assert cut.cut(child), f"no Produce request: {log_tail(log_path)}"
                outage()
            code = finish(child, 60, log_path)
        finally:
            stop_process(child)
        seconds = time.monotonic() - began
        assert code == 0, log_tail(log_path)
        produced = read_topic(proxy.address, names["commands"])
        connections = proxy.connections
    duplicates = check_commands(produced, expected, tmp_path / "ledger.sqlite")
    print(f"broker outages of {', '.join(f'{s:.1f}s' for s in outages)}: the run took "
          f"{seconds:.1f}s over {connections} proxied connections; {len(produced)} messages "
          f"for {len(expected)} commands ({duplicates} repeated)")


@pytest.mark.timeout(90)
def test_kill_and_restart_over_kafka_loses_nothing(
        chain_lines: list[tuple[str, bytes]], expected: dict[str, dict[str, Any]],
        redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    with proxied_broker(chain_lines) as (proxy, cut, names, watcher):
        log_path = tmp_path / "engine.log"
        killed = unanswered = 0
        began = time.monotonic()
        with log_path.open("wb") as log:
            for index, share in enumerate((*KILL_AT, None)):
                child = start_engine(proxy.address, names, redis_url, key_prefix, log)
                try:
                    reached = share is not None and watcher.wait_for(
                        int(share * len(expected)), child, 60)
                    muted = reached and index % 2 == 1 and cut.cut(child)
                    if reached and not muted:
                        time.sleep(0.02 * (index // 2 % 3))
                    if reached and child.poll() is None:
                        child.send_signal(signal.SIGKILL)
                        child.wait(10)
                        killed += 1
                        unanswered += int(muted)
                    else:  # the last run, or one that got to the end first
                        assert finish(child, 60, log_path) == 0, log_tail(log_path)
                finally:
                    stop_process(child)
                if muted:  # the muted connections lost bytes mid-stream: cut them
                    proxy.stop()
                    proxy.start()
        seconds = time.monotonic() - began
        produced = read_topic(proxy.address, names["commands"])
    assert killed >= 6, f"only {killed} of {len(KILL_AT)} runs were killed before finishing"
    duplicates = check_commands(produced, expected, tmp_path / "ledger.sqlite")
    # a batch the broker stored but the killed run never acknowledged is written again
    assert unanswered == 0 or duplicates > 0
    print(f"{killed} of {len(KILL_AT)} runs killed ({unanswered} with a Produce unanswered), "
          f"then one to the end, in {seconds:.1f}s: {len(produced)} messages for "
          f"{len(expected)} commands ({duplicates} repeated)")
