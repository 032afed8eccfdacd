"""`journeys ingest` producing to a real Kafka-protocol broker (Tansu): each event id on
the topic once however often it is posted, the engine's Kafka run over the topic the same
as its file run over the events, and a SIGKILL losing nothing acknowledged."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from ingest_clients import Stream, keyed, post_all
from kafka_broker import new_topics, tansu_broker
from test_kafka import CHAIN, JOURNEYS, PARTITIONS, UNTIL, consume_all, run_kafka

from benchmarks.ingest_process import Sources, ingest_process, write_sources
from connectors.ingest.batch import SOURCE_FIELD
from engine.app.generator import generate_events
from engine.core.events import parse_timestamp
from engine.flow.runner import RunOptions, run_on
from engine.storage.store import delete_matching
from journeys_dsl.loader import load_journeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with tansu_broker() as address:
        yield address


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    return write_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    delete_matching(client, f"*{name}*")
    client.close()


def sink(bootstrap: str, topic: str) -> list[str]:
    return ["--kafka", bootstrap, "--events-topic", topic]


def test_each_event_once_on_the_topic_and_the_engine_run_matches_a_file_run(
        bootstrap: str, sources: Sources, redis_url: str, prefix: str,
        tmp_path: Path) -> None:
    events = list(generate_events(CHAIN))
    names = new_topics(bootstrap, PARTITIONS)
    with ingest_process(sources, redis_url, prefix, sink(bootstrap, names["events"]),
                        tmp_path / "ingest.log") as server:
        post_all(server.url, sources, events)
        retried = post_all(server.url, sources, events[1000:1300])  # retries: all duplicates
    assert all(not answer.json()["stored"] for answer in retried)

    on_topic = consume_all(bootstrap, names["events"], PARTITIONS)
    counts = Counter(orjson.loads(value)["event_id"] for _, value, _ in on_topic)
    assert set(counts) == {event["event_id"] for event in events}
    assert set(counts.values()) == {1}
    for key, value, _ in on_topic:
        stored = orjson.loads(value)
        assert key == stored["customer_id"].encode()
        assert stored[SOURCE_FIELD] == "pos"

    original = tmp_path / "events.jsonl"
    original.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    commands = tmp_path / "commands.jsonl"
    run_on(redis_url, RunOptions(
        journeys=JOURNEYS, events=str(original), commands=str(commands),
        dead_letter=str(tmp_path / "dead.jsonl"), redis_url=redis_url, shards=PARTITIONS,
        prefix=f"{prefix}-file", until_ms=parse_timestamp(UNTIL)[0]), load_journeys(JOURNEYS))
    from_file = sorted(commands.read_bytes().splitlines())
    assert len(from_file) > 50

    assert run_kafka(bootstrap, names, redis_url, prefix) == 0
    from_topic = sorted(value for _, value, _ in consume_all(bootstrap, names["commands"]))
    assert from_topic == from_file
    assert consume_all(bootstrap, names["dead"]) == []


def test_what_was_acknowledged_survives_a_sigkill(bootstrap: str, sources: Sources,
                                                  redis_url: str, prefix: str,
                                                  tmp_path: Path) -> None:
    events = [{"event_id": f"k-{number:05d}", "customer_id": f"c{number % 97}",
               "type": "visit", "ts": "2025-03-01T12:00:00Z", "venue_id": "v1",
               "amount": 10.0} for number in range(4000)]
    names = new_topics(bootstrap, PARTITIONS)
    with ingest_process(sources, redis_url, prefix, sink(bootstrap, names["events"]),
                        tmp_path / "ingest.log") as server:
        stream = Stream(server.url, sources, events)
        stream.start()
        stream.wait_for(400)
        server.kill()
        stream.join()
    assert len(stream.acknowledged) < len(events)
    on_topic = {orjson.loads(value)["event_id"]
                for _, value, _ in consume_all(bootstrap, names["events"], PARTITIONS)}
    assert stream.acknowledged <= on_topic


def test_a_missing_topic_is_one_line(bootstrap: str, sources: Sources, redis_url: str,
                                     prefix: str, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as failed, ingest_process(
            sources, redis_url, prefix, sink(bootstrap, "absent-topic"),
            tmp_path / "ingest.log"):
        pass
    assert "journeys: Kafka topic 'absent-topic' does not exist" in str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_a_failed_request_is_not_acknowledged(sources: Sources, redis_url: str,
                                              prefix: str, tmp_path: Path) -> None:
    """The broker is gone before the events could be delivered: 503, never 200."""
    settings = tmp_path / "kafka.properties"
    settings.write_text("message.timeout.ms=2000\n", encoding="utf-8")
    with ExitStack() as stack:
        with tansu_broker() as address:
            names = new_topics(address, 1)
            server = stack.enter_context(ingest_process(
                sources, redis_url, prefix,
                [*sink(address, names["events"]), "--kafka-config", str(settings)],
                tmp_path / "ingest.log"))
        answer = httpx.post(f"{server.url}/events", headers=keyed(sources), timeout=30, json={
            "event_id": "e1", "customer_id": "c1", "type": "visit",
            "ts": "2025-03-01T12:00:00Z", "venue_id": "v1", "amount": 10.0})
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert "not stored, send again" in answer.json()["error"]
        again = httpx.post(f"{server.url}/events", headers=keyed(sources), timeout=30, json={
            "event_id": "e1", "customer_id": "c1", "type": "visit",
            "ts": "2025-03-01T12:00:00Z", "venue_id": "v1", "amount": 10.0})
        assert again.status_code == 503  # not marked as seen: never a false "duplicate"
