"""A real three-node Redis Cluster on loopback, started from redis-server, for tests."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from engine.storage.embedded_redis import redis_server_binary

NODES = 3


def _free_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = random.randint(20_000, 45_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"Redis Cluster: {what} within {timeout_s}s")


@contextmanager
def redis_cluster(folder: Path) -> Iterator[str]:
    """Start three cluster-enabled servers, join them, and yield a redis+cluster:// URL."""
    server = redis_server_binary()
    ports = [_free_port() for _ in range(NODES)]
    processes = []
    try:
        for port in ports:
            processes.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf", "--save", "", "--appendonly",
                 "no", "--dir", str(folder), "--logfile", f"node-{port}.log"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports:
            _wait(lambda p=port: redis.Redis(port=p).ping(), 30,
                  f"node {port} did not start (see {folder}/node-{port}.log)")
        # assign the 16384 slots over the nodes and introduce them to each other
        per_node = 16384 // NODES
        for index, port in enumerate(ports):
            last = 16383 if index == NODES - 1 else (index + 1) * per_node - 1
            redis.Redis(port=port).execute_command(  # ADDSLOTS: Redis 6.2 has no ranges
                "CLUSTER", "ADDSLOTS", *range(index * per_node, last + 1))
        for port in ports[1:]:
            redis.Redis(port=port).execute_command("CLUSTER", "MEET", "127.0.0.1", ports[0])
        _wait(lambda: all(
            redis.Redis(port=p).execute_command("CLUSTER", "INFO").decode().find(
                "cluster_state:ok") >= 0 for p in ports), 20, "the cluster did not become ok")
        _wait(lambda: len(RedisCluster(host="127.0.0.1", port=ports[0]).get_nodes()) == NODES,
              10, "the client did not see every node")
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
