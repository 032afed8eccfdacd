"""NATS JetStream in and out through the real dataflow, against a real NATS server and Redis:
the same commands as a file run, NATS in with JSONL out, a restart that applies nothing
twice, and kill -9 of the engine with the commands subject exactly once in the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from harness import REFERENCE_JOURNEYS
from kafka_broker import free_port
from nats_server import NATS_URL, Names, count, create_stream, nats_names, publish, read_subject

from connectors.nats_source import source_id_of
from engine.app.cli import main
from engine.app.generator import ChainConfig, generate_events
from engine.flow.runner import NatsOptions, RunOptions, run_on
from engine.storage.store import delete_matching, min_applied_position
from journeys_dsl.loader import load_journeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = REFERENCE_JOURNEYS
CHAIN = ChainConfig(seed=11, customers=300, days=120, start="2025-01-01")
BIG_CHAIN = ChainConfig(seed=23, customers=2000, days=120, start="2025-01-01")
UNTIL = "2025-05-02T00:00:00+00:00"
UNTIL_MS = int(datetime.fromisoformat(UNTIL).timestamp() * 1000)
SHARDS = 4
BAD_LINE = b'{"event_id": "bad-1", "type": "visit"}'
KILL_AT = tuple(round(0.1 * step, 1) for step in range(1, 10))
"""Nine kill points: when the commands subject holds 10%, 20% ... 90% of the expected
count; each restart resumes from what the killed run committed."""


@pytest.fixture
def names() -> Any:
    with nats_names() as made:
        yield made


@pytest.fixture(scope="module")
def chain_lines() -> list[bytes]:
    lines = [orjson.dumps(e) for e in generate_events(CHAIN)]
    return [*lines[:100], BAD_LINE, *lines[100:]]


def file_run(lines: list[bytes], folder: Path, redis_url: str, prefix: str
             ) -> tuple[list[bytes], list[dict[str, Any]]]:
    """The command lines and dead letters of a file run over `lines` (its state deleted)."""
    folder.mkdir(parents=True, exist_ok=True)
    events, commands, dead = folder / "events.jsonl", folder / "commands.jsonl", \
        folder / "dead.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    try:
        run_on(redis_url, RunOptions(
            journeys=JOURNEYS, events=str(events), commands=str(commands),
            dead_letter=str(dead), redis_url=redis_url, shards=SHARDS, prefix=prefix,
            until_ms=UNTIL_MS), load_journeys(JOURNEYS))
    finally:
        client = redis.Redis.from_url(redis_url)
        delete_matching(client, f"*{prefix}*")
        client.close()
    letters = dead.read_bytes().splitlines() if dead.exists() else []
    return commands.read_bytes().splitlines(), [orjson.loads(line) for line in letters]


@pytest.fixture(scope="module")
def expected(chain_lines: list[bytes], redis_url: str,
             tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[list[bytes], list[dict[str, Any]]]:
    return file_run(chain_lines, tmp_path_factory.mktemp("file"), redis_url,
                    f"t-nats-file-{os.getpid()}")


def nats_options(names: Names, **subjects: str) -> NatsOptions:
    return NatsOptions(NATS_URL, events_stream=names.events_stream,
                       outputs_stream=names.outputs_stream, until_end=True, **subjects)


def test_nats_run_gives_the_commands_a_file_run_writes(
        names: Names, chain_lines: list[bytes],
        expected: tuple[list[bytes], list[dict[str, Any]]], redis_url: str,
        key_prefix: str, tmp_path: Path) -> None:
    publish(names.events_stream, names.events, chain_lines)
    summary = run_on(redis_url, RunOptions(
        journeys=JOURNEYS, events="", redis_url=redis_url, shards=SHARDS, prefix=key_prefix,
        until_ms=UNTIL_MS, nats=nats_options(
            names, events_subject=names.events, commands_subject=names.commands,
            dead_letter_subject=names.dead)), load_journeys(JOURNEYS))
    assert summary.events_read == len(chain_lines)

    commands, dead = expected
    assert len(commands) > 50
    published = read_subject(names.outputs_stream, names.commands)
    assert sorted(payload for payload, _ in published) == sorted(commands)
    for payload, headers in published:
        command = orjson.loads(payload)
        assert headers["Nats-Msg-Id"] == headers["command_id"] == command["command_id"]
        assert headers["customer_id"] == command["customer_id"]

    [(raw, headers)] = read_subject(names.outputs_stream, names.dead)
    assert raw == BAD_LINE
    assert headers["reason"] == dead[0]["reason"]
    assert headers["source"] == source_id_of(names.events_stream, names.events)
    assert headers["position"] == str(chain_lines.index(BAD_LINE) + 1)  # its stream sequence

    client = redis.Redis.from_url(redis_url)
    try:
        applied = min_applied_position(client, key_prefix, SHARDS,
                                       source_id_of(names.events_stream, names.events))
    finally:
        client.close()
    assert applied == len(chain_lines)  # the last stream sequence, committed with the state


def run_cli(names: Names, redis_url: str, prefix: str, commands: Path, dead: Path,
            *extra: str) -> int:
    """`journeys run`: NATS in, JSONL out."""
    return main(["run", "--journeys", *JOURNEYS, "--redis", redis_url, "--prefix", prefix,
                 "--shards", str(SHARDS), "--nats", NATS_URL,
                 "--events-subject", names.events, "--events-stream", names.events_stream,
                 "--nats-until-end", "--commands", str(commands), "--dead-letter", str(dead),
                 *extra])


def test_nats_in_jsonl_out(names: Names, chain_lines: list[bytes],
                           expected: tuple[list[bytes], list[dict[str, Any]]],
                           redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    publish(names.events_stream, names.events, chain_lines)
    commands, dead = tmp_path / "commands.jsonl", tmp_path / "dead.jsonl"
    assert run_cli(names, redis_url, key_prefix, commands, dead, "--until", UNTIL) == 0
    assert sorted(commands.read_bytes().splitlines()) == sorted(expected[0])
    [letter] = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert letter["reason"] == expected[1][0]["reason"]
    assert letter["raw"] == BAD_LINE.decode()
    assert letter["source"] == source_id_of(names.events_stream, names.events)


def test_a_restart_resumes_without_reapplying(
        names: Names, chain_lines: list[bytes], redis_url: str, key_prefix: str,
        tmp_path: Path) -> None:
    half = len(chain_lines) // 2
    commands, dead = tmp_path / "commands.jsonl", tmp_path / "dead.jsonl"
    publish(names.events_stream, names.events, chain_lines[:half])
    assert run_cli(names, redis_url, key_prefix, commands, dead) == 0
    first = commands.read_bytes().splitlines()
    assert first

    assert run_cli(names, redis_url, key_prefix, commands, dead) == 0  # nothing new
    assert commands.read_bytes().splitlines() == first

    publish(names.events_stream, names.events, chain_lines[half:])
    options = RunOptions(
        journeys=JOURNEYS, events="", commands=str(commands), dead_letter=str(dead),
        redis_url=redis_url, shards=SHARDS, prefix=key_prefix,
        nats=nats_options(names, events_subject=names.events))
    summary = run_on(redis_url, options, load_journeys(JOURNEYS))
    assert summary.events_read == len(chain_lines) - half  # only the events published since
    ids = [orjson.loads(line)["command_id"] for line in commands.read_bytes().splitlines()]
    assert len(ids) > len(first)
    assert len(set(ids)) == len(ids), "a command was written twice"


def test_a_nats_server_that_is_down_is_one_clear_line(
        names: Names, redis_url: str, key_prefix: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--journeys", *JOURNEYS, "--redis", redis_url, "--prefix", key_prefix,
                 "--nats", f"nats://127.0.0.1:{free_port()}", "--events-subject", names.events,
                 "--commands", str(tmp_path / "c.jsonl")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "does not answer" in err and "Traceback" not in err


def start_engine(names: Names, redis_url: str, prefix: str, dead: Path,
                 log: Any) -> subprocess.Popen[bytes]:
    """`journeys run` NATS to NATS (dead letters to a file) to the end of the events."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--journeys", *JOURNEYS,
         "--redis", redis_url, "--prefix", prefix, "--shards", str(SHARDS),
         "--nats", NATS_URL, "--events-subject", names.events,
         "--events-stream", names.events_stream, "--commands-subject", names.commands,
         "--outputs-stream", names.outputs_stream, "--dead-letter", str(dead),
         "--nats-until-end", "--until", UNTIL, "--batch-lines", "200"],
        cwd=ROOT, stdout=log, stderr=log)


def wait_for(names: Names, target: int, child: subprocess.Popen[bytes],
             timeout_s: float) -> bool:
    """Whether the commands subject reached `target` messages while `child` ran."""
    deadline = time.monotonic() + timeout_s
    while child.poll() is None and time.monotonic() < deadline:
        if count(names.outputs_stream, names.commands) >= target:
            return True
        time.sleep(0.005)
    return False


@pytest.mark.timeout(300)
def test_kill_and_restart_over_nats_gives_each_command_once(
        names: Names, redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    lines = [orjson.dumps(e) for e in generate_events(BIG_CHAIN)]
    expected_lines, _ = file_run(lines, tmp_path / "file", redis_url, f"{key_prefix}-file")
    expected = {orjson.loads(line)["command_id"]: orjson.loads(line) for line in expected_lines}
    assert len(expected) > 1000
    publish(names.events_stream, names.events, lines)
    create_stream(names.outputs_stream, [names.commands])
    log_path = tmp_path / "engine.log"
    killed = 0
    with log_path.open("wb") as log:
        for share in (*KILL_AT, None):
            child = start_engine(names, redis_url, key_prefix, tmp_path / "dead.jsonl", log)
            try:
                if share is not None and wait_for(names, int(share * len(expected)), child, 60):
                    time.sleep(0.02 * (killed % 3))
                    if child.poll() is None:
                        child.send_signal(signal.SIGKILL)
                        child.wait(10)
                        killed += 1
                        continue
                assert child.wait(90) == 0, log_path.read_text()[-3000:]
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(10)
    assert killed >= 6, f"only {killed} of {len(KILL_AT)} runs were killed before finishing"
    published = read_subject(names.outputs_stream, names.commands)
    ids = [headers["command_id"] for _, headers in published]
    assert len(ids) == len(set(ids)), "a command is on the subject twice"
    assert set(ids) == set(expected), (
        f"missing {len(set(expected) - set(ids))}, extra {len(set(ids) - set(expected))}")
    assert all(orjson.loads(payload) == expected[orjson.loads(payload)["command_id"]]
               for payload, _ in published)
    print(f"{killed} of {len(KILL_AT)} runs killed, then one to the end: {len(published)} "
          f"messages for {len(expected)} commands")
