"""Restarts at the exact moments a kill -9 can leave behind, produced deterministically.

- A partial command line at the end of the commands file (killed inside `write()`): the
  next run cuts it off and writes the command whole from the outbox.
- Every input position applied, the outbox not yet written (killed between the commit and
  the sink): the next run writes the outbox even though the input has nothing new.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from harness import REFERENCE_JOURNEYS
from kafka_broker import new_topics, produce, tansu_broker
from test_kafka import consume_all

from engine.app.cli import main
from engine.app.generator import ChainConfig, generate_events
from engine.flow.routing import shard_of
from engine.storage.store import shard_tag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHAIN = ChainConfig(seed=5, customers=150, days=90, start="2025-01-01")
SHARDS = 4


@pytest.fixture(scope="module")
def chain_lines() -> list[bytes]:
    return [orjson.dumps(e) for e in generate_events(CHAIN)]


def run_file(events: Path, commands: Path, redis_url: str, prefix: str) -> int:
    return main(["run", "--journeys", *REFERENCE_JOURNEYS, "--events", str(events),
                 "--commands", str(commands), "--dead-letter", str(commands) + ".dead",
                 "--redis", redis_url, "--prefix", prefix, "--shards", str(SHARDS),
                 "--until", "2025-04-15T00:00:00+00:00"])


def put_back_in_outbox(client: redis.Redis, prefix: str, shards: int,
                       lines: list[bytes]) -> None:
    """Leave `lines` in their shards' outboxes, as a run killed before its sink wrote them."""
    for line in lines:
        shard = shard_of(orjson.loads(line)["customer_id"], shards)
        client.rpush(f"{shard_tag(prefix, shard)}:outbox", line.rstrip(b"\n") + b"\n")


def test_a_torn_command_line_is_cut_and_the_command_written_whole(
        chain_lines: list[bytes], redis_url: str, key_prefix: str, tmp_path: Path,
        redis_client: redis.Redis) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in chain_lines))
    commands = tmp_path / "commands.jsonl"
    assert run_file(events, commands, redis_url, key_prefix) == 0
    clean = commands.read_bytes().splitlines(keepends=True)
    assert len(clean) > 50
    last = clean[-1]
    # the last command was being appended when the process died: half of it is on disk,
    # and it is still in its shard's outbox (the sink never acknowledged it)
    commands.write_bytes(b"".join(clean[:-1]) + last[: len(last) // 2])
    put_back_in_outbox(redis_client, key_prefix, SHARDS, [last])

    assert run_file(events, commands, redis_url, key_prefix) == 0
    after = commands.read_bytes().splitlines(keepends=True)
    assert after == clean  # every line parses, none lost, none glued to a fragment
    assert [orjson.loads(line) for line in after]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with tansu_broker() as address:
        yield address


def test_kafka_until_end_writes_an_outbox_left_after_the_last_offset(
        bootstrap: str, chain_lines: list[bytes], redis_url: str, key_prefix: str,
        redis_client: redis.Redis) -> None:
    names = new_topics(bootstrap, SHARDS)
    produce(bootstrap, names["events"],
            [(str(orjson.loads(line)["customer_id"]), line) for line in chain_lines])
    argv = ["run", "--journeys", *REFERENCE_JOURNEYS, "--redis", redis_url,
            "--prefix", key_prefix, "--kafka", bootstrap, "--events-topic", names["events"],
            "--commands-topic", names["commands"], "--dead-letter-topic", names["dead"],
            "--kafka-until-end"]
    assert main(argv) == 0
    first = [value for _, value, _ in consume_all(bootstrap, names["commands"])]
    assert len(first) > 50
    # killed after every partition's offset was committed, before the outbox reached the
    # commands topic: the whole output is still in the outboxes
    put_back_in_outbox(redis_client, key_prefix, SHARDS, first)

    assert main(argv) == 0
    both = [value for _, value, _ in consume_all(bootstrap, names["commands"])]
    assert len(both) == 2 * len(first)
    assert sorted(both[len(first):]) == sorted(first)
    outboxes = [redis_client.llen(f"{shard_tag(key_prefix, s)}:outbox") for s in range(SHARDS)]
    assert outboxes == [0] * SHARDS
