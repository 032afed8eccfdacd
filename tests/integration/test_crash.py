"""Kill -9 the engine mid-run and restart it: no command lost, none with other content."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from harness import REFERENCE_JOURNEYS, commands_by_id, kill_when, sends_per_command

from engine.app.generator import ChainConfig, write_jsonl

pytestmark = pytest.mark.integration

# every reference journey, those reading chain-wide aggregates included: commands depend
# on event time alone, however often the run is killed
JOURNEYS = REFERENCE_JOURNEYS
KILL_AT = tuple(round(0.04 * step, 2) for step in range(1, 21))
"""Twenty kill points: when the output has reached 4%, 8% ... 80% of the uninterrupted
run's; each restart resumes from what the killed run committed."""


def command(events: Path, commands: Path, redis_url: str, prefix: str) -> list[str]:
    return [sys.executable, "-m", "engine", "run", "--journeys",
            *JOURNEYS, "--events", str(events),
            "--commands", str(commands), "--dead-letter", str(commands) + ".dead",
            "--redis", redis_url, "--prefix", prefix, "--shards", "4"]


def read(commands: Path) -> list[dict]:
    return [orjson.loads(line) for line in commands.read_bytes().splitlines()]


def test_kill_and_restart_loses_nothing(tmp_path: Path, redis_url: str,
                                        key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=13, customers=700, days=300), events)
    clean_path = tmp_path / "clean.jsonl"
    subprocess.run(command(events, clean_path, redis_url, f"{key_prefix}clean"), check=True,
                   capture_output=True, timeout=300)
    clean = {c["command_id"]: c for c in read(clean_path)}
    assert len(clean) > 500

    crashed_path = tmp_path / "crashed.jsonl"
    crashed_path.touch()
    full_size = clean_path.stat().st_size
    killed = 0
    for share in KILL_AT:
        killed += kill_when(command(events, crashed_path, redis_url, f"{key_prefix}crash"),
                            lambda share=share: crashed_path.stat().st_size
                            >= share * full_size, poll_s=0.005)
    subprocess.run(command(events, crashed_path, redis_url, f"{key_prefix}crash"), check=True,
                   capture_output=True, timeout=300)
    assert killed >= 15, f"only {killed} of {len(KILL_AT)} runs were killed before finishing"
    delivered = read(crashed_path)
    by_id = commands_by_id(delivered)
    assert set(by_id) == set(clean), (
        f"missing {len(set(clean) - set(by_id))}, extra {len(set(by_id) - set(clean))}")
    assert all(by_id[key] == clean[key] for key in clean)
    # the connector side: the repeated lines reach a channel once each
    sent = sends_per_command(delivered, tmp_path / "ledger.sqlite")
    assert set(sent) == set(clean) and max(sent.values()) == 1
