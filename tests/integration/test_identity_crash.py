"""Kill -9 in the middle of merges, restart, and compare with an uninterrupted run: every
merge happened exactly once (no count doubled, no state lost) and the commands are the
same, none missing and none extra."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from harness import REFERENCE_JOURNEYS, commands_by_id, kill_when, run_processes

from engine.app.generator import ChainConfig, generate_events
from engine.core.state import CustomerState
from engine.flow.identity import CRASH_VARIABLE
from engine.storage.store import read_stats, shard_tag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SHARDS = 4
CRASH_POINTS = ("handoff:1", "merge:1", "handoff:2", "merge:2", "handoff:1", "merge:1",
                "merge:3", "handoff:3")
"""Each restart is killed right after its Nth commit that handed a customer off, or merged
one (before the transfer record is deleted)."""
RANDOM_KILLS = 6


def chain_with_aliases(seed: int = 13) -> tuple[list[bytes], int]:
    """A generated chain with alias events merging customers with a history into others
    (some in chains: A into B, then B into C), and later events of a merged customer sent
    under a phone number it was linked by; the lines and the number of merges."""
    events = list(generate_events(ChainConfig(seed=seed, customers=300, days=200)))
    rng = random.Random(seed)
    times: dict[str, list[datetime]] = {}
    for item in events:
        times.setdefault(item["customer_id"], []).append(datetime.fromisoformat(item["ts"]))
    known = sorted(c for c, seen in times.items() if len(seen) >= 8)
    rng.shuffle(known)
    merges = []
    for number in range(24):
        merged, survivor = known[2 * number], known[2 * number + 1]
        seen = times[merged]  # in the middle of the merged customer's history
        when = seen[len(seen) // 2] + timedelta(minutes=rng.randint(1, 600))
        merges.append((when, merged, survivor, number))
    # chains: the survivors of the first merges are merged in turn, later
    for number in range(4):
        earlier, _, survivor, _ = merges[number]
        merges.append((earlier + timedelta(days=10), survivor, known[60 + number],
                       24 + number))
    out: list[dict[str, Any]] = []
    pending = sorted(merges)
    phones: dict[str, tuple[datetime, str]] = {}
    for item in events:
        ts = datetime.fromisoformat(item["ts"])
        while pending and pending[0][0] <= ts:
            when, merged, survivor, number = pending.pop(0)
            phone = f"+49-merge-{number}"
            phones[merged] = (when, phone)
            out.append({"event_id": f"alias-{number}", "customer_id": survivor,
                        "type": "alias", "ts": when.isoformat(),
                        "identifiers": [{"kind": "customer", "value": merged},
                                        {"kind": "phone", "value": phone}]})
        linked = phones.get(item["customer_id"])
        if linked is not None and ts > linked[0] and rng.random() < 0.5:
            item = {**item, "customer_id": linked[1]}
        out.append(item)
    return [orjson.dumps(item) for item in out], len(merges)


def command(events: Path, commands: Path, redis_url: str, prefix: str) -> list[str]:
    return [sys.executable, "-m", "engine", "run", "--journeys", *REFERENCE_JOURNEYS,
            "--events", str(events), "--commands", str(commands),
            "--dead-letter", str(commands) + ".dead", "--redis", redis_url,
            "--prefix", prefix, "--shards", str(SHARDS), "--batch-lines", "50"]


def states(client: redis.Redis, prefix: str) -> dict[str, CustomerState]:
    out = {}
    for shard in range(SHARDS):
        head = f"{shard_tag(prefix, shard)}:c:"
        for key in client.scan_iter(match=head + "*", count=1000):
            cid = key.decode()[len(head):]
            out[cid] = CustomerState.from_bytes(cid, client.get(key))
    return out


def read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_merges_happen_exactly_once_however_often_the_run_is_killed(
        tmp_path: Path, redis_url: str, key_prefix: str, redis_client: redis.Redis) -> None:
    lines, merges = chain_with_aliases()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))

    clean_path = tmp_path / "clean.jsonl"
    clean_prefix = f"{key_prefix}clean"
    subprocess.run(command(events, clean_path, redis_url, clean_prefix), check=True,
                   capture_output=True, timeout=300)
    clean = {c["command_id"]: c for c in read(clean_path)}
    clean_states = states(redis_client, clean_prefix)
    clean_stats = read_stats(redis_client, clean_prefix, SHARDS)
    assert clean_stats["identity|merged"] == merges
    assert len(clean) > 200

    crashed_path = tmp_path / "crashed.jsonl"
    crashed_path.touch()
    prefix = f"{key_prefix}crash"
    killed = 0
    for point in CRASH_POINTS:
        environment = {**os.environ, CRASH_VARIABLE: point}
        done = subprocess.run(command(events, crashed_path, redis_url, prefix),
                              env=environment, capture_output=True, timeout=300)
        if done.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert done.returncode == 0, done.stderr.decode()[-2000:]
    rng = random.Random(5)
    full_size = clean_path.stat().st_size
    for _ in range(RANDOM_KILLS):
        share = crashed_path.stat().st_size / full_size + rng.uniform(0.02, 0.1)
        killed += kill_when(command(events, crashed_path, redis_url, prefix),
                            lambda share=share: crashed_path.stat().st_size
                            >= share * full_size, poll_s=0.003)
    subprocess.run(command(events, crashed_path, redis_url, prefix), check=True,
                   capture_output=True, timeout=300)
    assert killed >= len(CRASH_POINTS) - 1, f"only {killed} runs were killed"

    delivered = read(crashed_path)
    by_id = commands_by_id(delivered)
    assert set(by_id) == set(clean), (
        f"missing {len(set(clean) - set(by_id))}, extra {len(set(by_id) - set(clean))}")
    assert all(by_id[key] == clean[key] for key in clean)

    # every customer's state as the uninterrupted run left it: no merge applied twice
    # (visit counts, spend, points not doubled), none lost, no merged customer left over
    crashed_states = states(redis_client, prefix)
    assert set(crashed_states) == set(clean_states)
    for cid, state in clean_states.items():
        assert crashed_states[cid] == state, cid
    assert read_stats(redis_client, prefix, SHARDS) == clean_stats
    # one marker per hand-off, as in the uninterrupted run; a transfer record a kill left
    # behind (after the merge's commit, before its deletion) is marked as merged
    markers = set().union(*[redis_client.hkeys(f"{shard_tag(prefix, shard)}:merged")
                            for shard in range(SHARDS)])
    assert markers == set().union(*[
        redis_client.hkeys(f"{shard_tag(clean_prefix, shard)}:merged")
        for shard in range(SHARDS)])
    left = set().union(*[redis_client.hkeys(f"{shard_tag(prefix, shard)}:transfers")
                         for shard in range(SHARDS)])
    assert left <= markers


def test_merges_give_the_same_commands_whatever_the_shards_batches_and_processes(
        tmp_path: Path, key_prefix: str, redis_url: str) -> None:
    from engine.app.cli import main

    lines, _ = chain_with_aliases(seed=21)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    outputs = []
    for shards, batch in ((4, 50), (3, 7), (1, 2000)):
        out = tmp_path / f"commands-{shards}-{batch}.jsonl"
        argv = command(events, out, redis_url, f"{key_prefix}{shards}-{batch}")[3:]
        argv[argv.index("--shards") + 1] = str(shards)
        argv[argv.index("--batch-lines") + 1] = str(batch)
        assert main(argv) == 0
        outputs.append(sorted(out.read_bytes().splitlines()))  # shards interleave apart
    # two processes: a shard waits for hand-offs that the other process commits
    pair = tmp_path / "commands-pair.jsonl"
    argv = command(events, pair, redis_url, f"{key_prefix}pair")[3:]
    assert run_processes(argv, 2) == [0, 0]
    outputs.append(sorted(pair.read_bytes().splitlines()))
    assert outputs[0] and all(output == outputs[0] for output in outputs)
