"""EmbeddedRedis starts a private server, stops it for good and can persist to a data dir."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import redis

import engine.storage.embedded_redis as embedded
from engine.storage.embedded_redis import EmbeddedRedis, EmbeddedRedisError, redis_server_binary

pytestmark = pytest.mark.integration


def _pid_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_binary_is_found() -> None:
    path = redis_server_binary()
    assert os.access(path, os.X_OK)


def test_set_get_then_stop_kills_process_and_is_idempotent() -> None:
    server = EmbeddedRedis().start()
    pid = server.pid
    assert server.running
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    client = redis.Redis.from_url(server.url)
    try:
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()

    server.stop()
    assert _pid_gone(pid)
    assert not server.running
    server.stop()
    with pytest.raises(EmbeddedRedisError):
        _ = server.url


def test_context_manager_removes_workdir() -> None:
    with EmbeddedRedis() as server:
        pid = server.pid
        assert redis.Redis.from_url(server.url).ping()
        workdir = server._workdir
        assert workdir is not None and workdir.exists()
    assert _pid_gone(pid)
    assert not workdir.exists()


def test_two_instances_get_different_ports() -> None:
    with EmbeddedRedis() as first, EmbeddedRedis() as second:
        assert first.port != second.port
        a, b = redis.Redis.from_url(first.url), redis.Redis.from_url(second.url)
        a.set("who", "first")
        assert b.get("who") is None
        a.close()
        b.close()


def test_data_dir_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    with EmbeddedRedis(data_dir=data_dir) as server:
        client = redis.Redis.from_url(server.url)
        client.set("journey:kept", "yes")
        client.close()
    with EmbeddedRedis(data_dir=data_dir) as server:
        client = redis.Redis.from_url(server.url)
        assert client.get("journey:kept") == b"yes"
        client.close()


def test_without_data_dir_nothing_survives() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.set("gone", "1")
        client.close()
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        assert client.get("gone") is None
        client.close()


def test_startup_failure_reports_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'fatal: bad config' \nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(EmbeddedRedisError, match="bad config"):
        EmbeddedRedis(binary=str(fake)).start()


def test_fixture_client_and_prefix_cleanup(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{{{key_prefix}:s0}}:c:1"
    redis_client.set(key, "1")
    assert redis_client.get(key) == b"1"


def test_port_in_use_is_retried_on_another_port(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    ports = iter([busy.getsockname()[1]])
    real_free_port = embedded._free_port
    monkeypatch.setattr(embedded, "_free_port", lambda: next(ports, None) or real_free_port())
    try:
        with EmbeddedRedis() as server:
            assert server.port != busy.getsockname()[1]
            assert redis.Redis.from_url(server.url).ping()
    finally:
        busy.close()
