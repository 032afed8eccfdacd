"""The same events give byte-identical commands whatever the batch size, shard count,
process count or source (file or Kafka), with every reference journey, those that read
chain-wide aggregates included."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from harness import run_processes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka_broker import new_topics, produce, tansu_broker
from test_kafka import consume_all

from engine.app.cli import main
from engine.app.generator import ChainConfig, generate_events
from engine.compiled_core import PURE_PYTHON_VARIABLE
from engine.storage.store import delete_matching

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = str(ROOT / "examples" / "journeys")
CHAIN = ChainConfig(seed=21, customers=400, days=150, start="2025-01-01")
UNTIL = "2025-06-15T00:00:00+00:00"


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chain") / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in generate_events(CHAIN)))
    return path


def run_file(events: Path, out: Path, redis_url: str, prefix: str, *extra: str) -> list[bytes]:
    commands = out / f"{prefix}.jsonl"
    assert main(["run", "--journeys", JOURNEYS, "--events", str(events),
                 "--commands", str(commands), "--dead-letter", str(out / f"{prefix}.dead"),
                 "--redis", redis_url, "--prefix", prefix, "--until", UNTIL, *extra]) == 0
    return sorted(commands.read_bytes().splitlines())


@pytest.fixture(scope="module")
def reference(events_file: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[list[bytes]]:
    """The commands of a default run (8 shards, batches of 8,000 lines)."""
    out = tmp_path_factory.mktemp("reference")
    prefix = f"det-ref-{uuid.uuid4().hex[:8]}"  # unique: concurrent runs share Redis
    lines = run_file(events_file, out, redis_url, prefix)
    assert len(lines) > 300
    journeys = {orjson.loads(line)["journey"] for line in lines}
    # the chain-wide readers are among them: venue average, spend percentile
    assert {"impressed_newcomer", "vip_invitation"} <= journeys
    yield lines
    client = redis.Redis.from_url(redis_url)
    delete_matching(client, f"*{prefix}*")
    client.close()


def difference(lines: list[bytes], reference: list[bytes]) -> str:
    missing, extra = set(reference) - set(lines), set(lines) - set(reference)
    return f"{len(missing)} missing, {len(extra)} extra of {len(reference)}"


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_lines=st.sampled_from([1, 7, 100, 999, 3000]),
       shards=st.sampled_from([1, 2, 3, 8, 16]))
def test_batch_size_and_shard_count_change_nothing(
        batch_lines: int, shards: int, events_file: Path, reference: list[bytes],
        redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    prefix = f"{key_prefix}-{batch_lines}-{shards}"
    lines = run_file(events_file, tmp_path, redis_url, prefix, "--batch-lines",
                     str(batch_lines), "--shards", str(shards))
    assert lines == reference, difference(lines, reference)


def test_broken_lines_that_move_batch_boundaries_change_nothing(
        events_file: Path, reference: list[bytes], redis_url: str, key_prefix: str,
        tmp_path: Path) -> None:
    lines = events_file.read_bytes().splitlines(keepends=True)
    noisy = tmp_path / "noisy.jsonl"
    noisy.write_bytes(b"".join((b"not json\n" * 95 if i == 40 else b"") + line
                               for i, line in enumerate(lines)))
    got = run_file(noisy, tmp_path, redis_url, key_prefix, "--batch-lines", "1000")
    assert got == reference, difference(got, reference)


def test_two_processes_over_a_file_give_the_same_commands(
        events_file: Path, reference: list[bytes], redis_url: str, key_prefix: str,
        tmp_path: Path) -> None:
    commands = tmp_path / "pair.jsonl"
    assert run_processes(["run", "--journeys", JOURNEYS, "--events", str(events_file),
                          "--commands", str(commands), "--dead-letter",
                          str(tmp_path / "pair.dead"), "--redis", redis_url,
                          "--prefix", key_prefix, "--until", UNTIL, "--batch-lines", "500"],
                         2) == [0, 0]
    got = sorted(commands.read_bytes().splitlines())
    assert got == reference, difference(got, reference)


def test_the_python_source_of_the_compiled_core_gives_the_same_commands(
        events_file: Path, reference: list[bytes], redis_url: str, key_prefix: str,
        tmp_path: Path) -> None:
    """The reference ran this process's core (compiled where it was built); the same run
    on the modules' Python source must give the same bytes."""
    commands = tmp_path / "source.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "run", "--journeys", JOURNEYS,
                    "--events", str(events_file), "--commands", str(commands),
                    "--dead-letter", str(tmp_path / "source.dead"), "--redis", redis_url,
                    "--prefix", key_prefix, "--until", UNTIL],
                   env={**os.environ, PURE_PYTHON_VARIABLE: "1"}, cwd=ROOT,
                   capture_output=True, check=True, timeout=240)
    got = sorted(commands.read_bytes().splitlines())
    assert got == reference, difference(got, reference)


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with tansu_broker() as address:
        yield address


@pytest.mark.parametrize("processes", [1, 2])
def test_kafka_gives_the_same_commands_as_a_file(
        processes: int, bootstrap: str, events_file: Path, reference: list[bytes],
        redis_url: str, key_prefix: str) -> None:
    names = new_topics(bootstrap, 4)
    produce(bootstrap, names["events"],
            [(str(orjson.loads(line)["customer_id"]), line)
             for line in events_file.read_bytes().splitlines()])
    arguments = ["run", "--journeys", JOURNEYS, "--redis", redis_url, "--prefix", key_prefix,
                 "--kafka", bootstrap, "--events-topic", names["events"],
                 "--commands-topic", names["commands"], "--dead-letter-topic", names["dead"],
                 "--kafka-until-end", "--until", UNTIL, "--batch-lines", "700"]
    assert run_processes(arguments, processes) == [0] * processes
    got = sorted(value for _, value, _ in consume_all(bootstrap, names["commands"]))
    assert got == reference, difference(got, reference)
