"""Kafka to Kafka through the real dataflow, against a Tansu broker and Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition
from harness import REFERENCE_JOURNEYS, run_processes
from kafka_broker import new_topics, produce, tansu_broker

from engine.app.cli import main
from engine.app.generator import ChainConfig, generate_events
from engine.flow.runner import RunOptions, run_on
from journeys_dsl.loader import load_journeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

JOURNEYS = REFERENCE_JOURNEYS
CHAIN = ChainConfig(seed=11, customers=300, days=120, start="2025-01-01")
UNTIL = "2025-05-02T00:00:00+00:00"
PARTITIONS = 4


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with tansu_broker() as address:
        yield address


@pytest.fixture(scope="module")
def chain_lines() -> list[tuple[str, bytes]]:
    return [(str(e["customer_id"]), orjson.dumps(e)) for e in generate_events(CHAIN)]


def consume_all(bootstrap: str, topic: str, partitions: int = 1,
                quiet_s: float = 2.0) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Every message of `topic`: (key, value, headers), read until nothing new for quiet_s."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s:
            for message in consumer.consume(1000, 0.2):
                assert message.error() is None, message.error()
                out.append((message.key(), message.value() or b"",
                            {k: v or b"" for k, v in message.headers() or []}))
                last = time.monotonic()
    finally:
        consumer.close()
    return out


def run_kafka(bootstrap: str, names: dict[str, str], redis_url: str, prefix: str,
              *extra: str) -> int:
    return main(["run", "--journeys", *JOURNEYS, "--redis", redis_url, "--prefix", prefix,
                 "--kafka", bootstrap, "--events-topic", names["events"],
                 "--commands-topic", names["commands"], "--dead-letter-topic", names["dead"],
                 "--kafka-until-end", "--until", UNTIL, *extra])


def test_kafka_run_matches_jsonl_run_and_resumes(
        bootstrap: str, chain_lines: list[tuple[str, bytes]], redis_url: str,
        key_prefix: str, tmp_path: Path) -> None:
    names = new_topics(bootstrap, PARTITIONS)
    produce(bootstrap, names["events"], chain_lines)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for _, line in chain_lines))
    commands = tmp_path / "commands.jsonl"
    until_ms = 1746144000000
    run_on(redis_url, RunOptions(
        journeys=JOURNEYS, events=str(events), commands=str(commands),
        dead_letter=str(tmp_path / "dead.jsonl"), redis_url=redis_url, shards=PARTITIONS,
        prefix=f"{key_prefix}-jsonl", until_ms=until_ms), load_journeys(JOURNEYS))
    expected = sorted(orjson.loads(line)["command_id"]
                      for line in commands.read_bytes().splitlines())
    assert len(expected) > 50

    began = time.perf_counter()
    assert run_kafka(bootstrap, names, redis_url, key_prefix) == 0
    seconds = time.perf_counter() - began
    produced = consume_all(bootstrap, names["commands"])
    ids = sorted(headers["command_id"].decode() for _, _, headers in produced)
    assert ids == expected
    for key, value, headers in produced:
        command = orjson.loads(value)
        assert key == command["customer_id"].encode()
        assert headers["command_id"].decode() == command["command_id"]
    print(f"kafka-to-kafka: {len(chain_lines)} events in {seconds:.2f}s")

    client = redis.Redis.from_url(redis_url)
    assert client.hget(f"{key_prefix}:meta", "partitions") == str(PARTITIONS).encode()
    client.close()
    assert run_kafka(bootstrap, names, redis_url, key_prefix) == 0
    assert len(consume_all(bootstrap, names["commands"])) == len(produced)


def test_missing_topic_is_a_clear_error(bootstrap: str, redis_url: str, key_prefix: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    names = new_topics(bootstrap, PARTITIONS)
    names["events"] = f"absent-{uuid.uuid4().hex[:8]}"
    assert run_kafka(bootstrap, names, redis_url, key_prefix) == 2
    assert f"topic {names['events']!r} does not exist" in capsys.readouterr().err


def test_partition_count_change_is_refused(bootstrap: str, redis_url: str, key_prefix: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    first = new_topics(bootstrap, 2)
    assert run_kafka(bootstrap, first, redis_url, key_prefix) == 0
    second = new_topics(bootstrap, 3)
    assert run_kafka(bootstrap, second, redis_url, key_prefix) == 2
    assert "written from 2 Kafka partitions" in capsys.readouterr().err


def test_bad_events_go_to_the_dead_letter_topic(
        bootstrap: str, chain_lines: list[tuple[str, bytes]], redis_url: str,
        key_prefix: str) -> None:
    names = new_topics(bootstrap, PARTITIONS)
    bad = [("x", b"{not json"), ("y", orjson.dumps({"event_id": "e1", "type": "visit"}))]
    produce(bootstrap, names["events"], chain_lines[:200] + bad)
    assert run_kafka(bootstrap, names, redis_url, key_prefix) == 0
    dead = consume_all(bootstrap, names["dead"])
    assert sorted(value for _, value, _ in dead) == sorted(value for _, value in bad)
    for _, _, headers in dead:
        assert headers["reason"]
        assert headers["source"].decode().startswith(f"kafka:{names['events']}:")


def test_two_processes_give_the_same_commands_as_one(
        bootstrap: str, chain_lines: list[tuple[str, bytes]], redis_url: str,
        key_prefix: str) -> None:
    single, pair = new_topics(bootstrap, PARTITIONS), new_topics(bootstrap, PARTITIONS)
    produce(bootstrap, single["events"], chain_lines)
    produce(bootstrap, pair["events"], chain_lines)
    assert run_kafka(bootstrap, single, redis_url, f"{key_prefix}-one") == 0
    assert run_processes(["run", "--journeys", *JOURNEYS, "--redis", redis_url,
                          "--prefix", key_prefix, "--kafka", bootstrap,
                          "--events-topic", pair["events"], "--commands-topic", pair["commands"],
                          "--dead-letter-topic", pair["dead"], "--kafka-until-end",
                          "--until", UNTIL], 2, timeout_s=120) == [0, 0]

    def ids(names: dict[str, str]) -> list[str]:
        return sorted(h["command_id"].decode() for _, _, h in consume_all(bootstrap,
                                                                          names["commands"]))
    assert ids(pair) == ids(single)
