"""Shared fixtures: one Redis per test session and a key prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from connectors.delivery.service import DeliveryLedger
from engine.storage.embedded_redis import EmbeddedRedis
from engine.storage.store import delete_matching

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_ENV = "JOURNEYS_TEST_REDIS_URL"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"integration: needs Redis ({REDIS_URL_ENV}, 127.0.0.1:6379 or an embedded server)",
    )


def _answers_ping(url: str, timeout_s: float) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """$JOURNEYS_TEST_REDIS_URL, else a local Redis on 6379, else an embedded server."""
    override = os.environ.get(REDIS_URL_ENV)
    if override:
        yield override
    elif _answers_ping(LOCAL_REDIS_URL, 0.5):
        yield LOCAL_REDIS_URL
    else:
        with EmbeddedRedis() as server:
            yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis (responses as bytes)."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix unique to the test; every key containing it is deleted afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        delete_matching(client, f"*{prefix}*")
    finally:
        client.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[DeliveryLedger]:
    """An empty delivery ledger in the test's folder."""
    with DeliveryLedger(tmp_path / "ledger.sqlite") as opened:
        yield opened
