"""`journeys ingest` as a real process on loopback, writing a JSON Lines file, with real
HTTP clients and a real Redis: who gets in, what is refused and why, duplicates, the file
the engine reads, and a SIGKILL while clients post."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from harness import REFERENCE_JOURNEYS
from ingest_clients import NDJSON, Stream, keyed, ndjson, post_all, signed_headers

from benchmarks.ingest_bench import load
from benchmarks.ingest_process import IngestProcess, Sources, ingest_process, write_sources
from benchmarks.tansu import free_port
from connectors.ingest.batch import SOURCE_FIELD
from connectors.ingest.seen import SEEN_FOR_S
from engine.app.cli import main
from engine.app.generator import ChainConfig, generate_events
from engine.flow.runner import RunOptions, run_on
from engine.storage.embedded_redis import EmbeddedRedis
from engine.storage.store import delete_matching
from journeys_dsl.loader import load_journeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def visit(event_id: str, **fields: object) -> dict[str, object]:
    return {"event_id": event_id, "customer_id": "c1", "type": "visit",
            "ts": "2025-03-01T12:00:00+01:00", "venue_id": "v1", "amount": 20.0, **fields}


def new_id() -> str:
    return f"e-{uuid.uuid4().hex[:12]}"


def stored_lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def prefix(redis_url: str) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    delete_matching(client, f"*{name}*")
    client.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    return write_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def server(sources: Sources, redis_url: str, prefix: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestProcess]:
    folder = tmp_path_factory.mktemp("ingest")
    with ingest_process(sources, redis_url, prefix, ["--events-out", str(folder / "in.jsonl")],
                        folder / "ingest.log") as started:
        yield started


@pytest.fixture
def out(server: IngestProcess) -> Path:
    return server.log.parent / "in.jsonl"


def test_health_answers(server: IngestProcess) -> None:
    answer = httpx.get(f"{server.url}/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-the-key-0123456789"},
])
def test_a_request_without_the_key_is_refused(server: IngestProcess, out: Path,
                                              headers: dict[str, str]) -> None:
    event_id = new_id()
    answer = httpx.post(f"{server.url}/events", json=visit(event_id), headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]
    assert event_id.encode() not in out.read_bytes()


def test_a_signed_request_is_tagged_with_its_source(server: IngestProcess, sources: Sources,
                                                    out: Path) -> None:
    event_id = new_id()
    body = orjson.dumps(visit(event_id))
    answer = httpx.post(f"{server.url}/events", content=body,
                        headers=signed_headers(sources, body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["source"] == "bookings"
    (line,) = [line for line in stored_lines(out) if line["event_id"] == event_id]
    assert line[SOURCE_FIELD] == "bookings"


@pytest.mark.parametrize(("signing", "reason"), [
    ("wrong body", "does not match"),
    ("stale", "stale or replayed"),
    ("wrong secret", "does not match"),
])
def test_a_bad_signature_or_a_stale_timestamp_is_refused(
        server: IngestProcess, sources: Sources, out: Path, signing: str, reason: str) -> None:
    event_id = new_id()
    body = orjson.dumps(visit(event_id))
    if signing == "wrong body":
        headers = signed_headers(sources, orjson.dumps(visit(new_id())))
    elif signing == "stale":
        headers = signed_headers(sources, body, at=time.time() - 3600)
    else:
        headers = signed_headers(Sources(sources.path, "", "another-secret-0123456789", {}),
                                 body)
    answer = httpx.post(f"{server.url}/events", content=body, headers=headers)
    assert answer.status_code == 401
    assert reason in answer.json()["error"]
    assert event_id.encode() not in out.read_bytes()


def test_refused_events_get_their_reasons_and_the_valid_ones_are_stored(
        server: IngestProcess, sources: Sources, out: Path) -> None:
    good, other = new_id(), new_id()
    body = [visit(good), visit(new_id(), amount="lots"), {"event_id": new_id()},
            visit(other, ts="yesterday")]
    answer = httpx.post(f"{server.url}/events", json=body, headers=keyed(sources))
    assert answer.status_code == 422
    receipt = answer.json()
    assert receipt["stored"] == [{"index": 0, "event_id": good}]
    assert receipt["refused"] == [
        {"index": 1, "reason": "'amount' must be a number, got 'lots'"},
        {"index": 2, "reason": "missing or empty 'customer_id'"},
        {"index": 3, "reason": "'ts' is not ISO-8601: 'yesterday'"},
    ]
    ids = [line["event_id"] for line in stored_lines(out)]
    assert good in ids and other not in ids


def test_a_body_that_is_not_json_is_a_400(server: IngestProcess, sources: Sources) -> None:
    answer = httpx.post(f"{server.url}/events", content=b"{not json",
                        headers={**keyed(sources), "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]


def test_a_retried_request_stores_nothing_twice(server: IngestProcess, sources: Sources,
                                                out: Path, redis_url: str,
                                                prefix: str) -> None:
    ids = [new_id() for _ in range(3)]
    body = ndjson([visit(i) for i in ids])
    first = httpx.post(f"{server.url}/events", content=body, headers={**keyed(sources), **NDJSON})
    again = httpx.post(f"{server.url}/events", content=body, headers={**keyed(sources), **NDJSON})
    assert first.status_code == again.status_code == 200
    assert [e["event_id"] for e in first.json()["stored"]] == ids
    assert again.json()["stored"] == []
    assert [e["event_id"] for e in again.json()["duplicates"]] == ids
    twice = httpx.post(f"{server.url}/events", json=[visit(ids[0]), visit(new_id()),
                                                     visit(ids[0])], headers=keyed(sources))
    assert [e["index"] for e in twice.json()["duplicates"]] == [0, 2]
    stored = [line["event_id"] for line in stored_lines(out)]
    assert all(stored.count(i) == 1 for i in ids)
    client = redis.Redis.from_url(redis_url)
    ttl = client.ttl(f"{prefix}:ingest:{{pos}}:seen:{ids[0]}")
    client.close()
    assert SEEN_FOR_S - 3600 < ttl <= SEEN_FOR_S


def test_the_same_event_id_from_another_source_is_its_own(
        server: IngestProcess, sources: Sources) -> None:
    event_id = new_id()
    body = orjson.dumps(visit(event_id))
    keyed_answer = httpx.post(f"{server.url}/events", content=body, headers=keyed(sources))
    signed_answer = httpx.post(f"{server.url}/events", content=body,
                               headers=signed_headers(sources, body))
    assert len(keyed_answer.json()["stored"]) == len(signed_answer.json()["stored"]) == 1


def test_the_engine_reads_the_ingested_file_as_the_original(
        sources: Sources, redis_url: str, prefix: str, tmp_path: Path) -> None:
    events = list(generate_events(ChainConfig(seed=5, customers=120, days=90,
                                              start="2025-01-01")))
    original = tmp_path / "original.jsonl"
    original.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    ingested = tmp_path / "ingested.jsonl"
    with ingest_process(sources, redis_url, f"{prefix}-engine", ["--events-out", str(ingested)],
                        tmp_path / "ingest.log") as server:
        post_all(server.url, sources, events)
        post_all(server.url, sources, events[:300])  # a client retrying: all duplicates
    assert len(stored_lines(ingested)) == len(events)
    commands = {}
    for name, path in (("original", original), ("ingested", ingested)):
        commands[name] = tmp_path / f"{name}-commands.jsonl"
        summary = run_on(redis_url, RunOptions(
            journeys=REFERENCE_JOURNEYS, events=str(path), commands=str(commands[name]),
            dead_letter=str(tmp_path / f"{name}-dead.jsonl"), redis_url=redis_url,
            prefix=f"{prefix}-{name}"), load_journeys(REFERENCE_JOURNEYS))
        assert summary.dead_letters == 0
    assert commands["original"].read_bytes() == commands["ingested"].read_bytes()
    assert commands["original"].stat().st_size > 0


def test_what_was_acknowledged_survives_a_sigkill(sources: Sources, redis_url: str,
                                                  prefix: str, tmp_path: Path) -> None:
    events = [visit(f"k-{number:05d}") for number in range(4000)]
    out = tmp_path / "in.jsonl"
    sink = ["--events-out", str(out)]
    with ingest_process(sources, redis_url, f"{prefix}-kill", sink,
                        tmp_path / "first.log") as server:
        stream = Stream(server.url, sources, events)
        stream.start()
        stream.wait_for(400)
        server.kill()
        stream.join()
    acknowledged, sent = set(stream.acknowledged), set(stream.sent)
    assert len(acknowledged) < len(events)
    lines = out.read_bytes().split(b"\n")
    whole = {orjson.loads(line)["event_id"] for line in lines[:-1]}
    assert acknowledged <= whole

    # a restart cuts a torn last line; resending every event stores the rest, and only
    # events in flight at the kill can be there twice (the engine drops the repeat)
    with ingest_process(sources, redis_url, f"{prefix}-kill", sink,
                        tmp_path / "second.log") as server:
        post_all(server.url, sources, events, batch=50)
    stored = [line["event_id"] for line in stored_lines(out)]
    assert set(stored) == {event["event_id"] for event in events}
    twice = {event_id for event_id in stored if stored.count(event_id) > 1}
    assert twice <= sent - acknowledged


def test_command_line_mistakes_are_one_line(server: IngestProcess, sources: Sources,
                                            out: Path, redis_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["ingest", "--config", str(sources.path), "--redis", redis_url, "--port", "1"]
    with pytest.raises(SystemExit) as exited:
        main([*base, "--events-out", str(tmp_path / "x.jsonl"), "--kafka", "127.0.0.1:9"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "journeys ingest: give one of --events-out FILE and --kafka BOOTSTRAP "
        "(see journeys ingest --help)")

    monkeypatch.delenv("INGEST_POS_KEY", raising=False)
    assert main([*base, "--events-out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"journeys: {sources.path}:3:20: sources[0].api_keys_env[0]: "
                          "environment variable INGEST_POS_KEY is not set")
    assert err.count("\n") == 1

    for name, value in sources.environ.items():
        monkeypatch.setenv(name, value)
    free = ["ingest", "--config", str(sources.path), "--redis", redis_url, "--port",
            str(free_port())]
    assert main([*free, "--events-out", str(out)]) == 2
    assert "is being written by another process" in capsys.readouterr().err


def test_the_load_test_counts_what_it_sent(server: IngestProcess, sources: Sources,
                                           out: Path) -> None:
    lines = [orjson.dumps(visit(new_id())) for _ in range(40)]
    single = load(server.url, sources.api_key, lines[:20], 1, clients=4)
    batched = load(server.url, sources.api_key, [b"\n".join(lines[20:30]),
                                                 b"\n".join(lines[30:])], 10, clients=2)
    assert (single.requests, single.events, batched.requests, batched.events) == (20, 20, 2, 20)
    assert 0 < single.percentile_ms(0.5) <= single.percentile_ms(0.99)
    stored = {line["event_id"] for line in stored_lines(out)}
    assert {orjson.loads(line)["event_id"] for line in lines} <= stored


def test_concurrent_copies_of_a_request_store_each_event_once(
        server: IngestProcess, sources: Sources, out: Path) -> None:
    ids = [new_id() for _ in range(20)]
    body = ndjson([visit(i) for i in ids])

    async def post_copies() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                     headers={**keyed(sources), **NDJSON}) as client:
            return list(await asyncio.gather(*(client.post("/events", content=body)
                                               for _ in range(8))))

    answers = asyncio.run(post_copies())
    assert {answer.status_code for answer in answers} == {200}
    stored = [e["event_id"] for answer in answers for e in answer.json()["stored"]]
    assert sorted(stored) == sorted(ids)
    in_file = [line["event_id"] for line in stored_lines(out)]
    assert all(in_file.count(i) == 1 for i in ids)


def test_without_redis_nothing_is_acknowledged_or_stored(sources: Sources,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "in.jsonl"
    redis_server = EmbeddedRedis().start()
    try:
        with ingest_process(sources, redis_server.url, "t-outage",
                            ["--events-out", str(out)], tmp_path / "ingest.log") as server:
            before = httpx.post(f"{server.url}/events", json=visit(new_id()),
                                headers=keyed(sources))
            assert before.status_code == 200
            redis_server.stop()
            event_id = new_id()
            answer = httpx.post(f"{server.url}/events", json=visit(event_id),
                                headers=keyed(sources), timeout=60)
            assert answer.status_code == 503
            assert "send again" in answer.json()["error"]
            assert httpx.get(f"{server.url}/health", timeout=60).status_code == 503
    finally:
        redis_server.stop()
    assert event_id.encode() not in out.read_bytes()
