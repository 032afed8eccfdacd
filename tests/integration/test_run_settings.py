"""`journeys run` options from a settings file and JOURNEYS_* variables, flags winning."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
import redis

from engine.storage.store import delete_matching

ROOT = Path(__file__).resolve().parents[2]
VISIT = {"event_id": "e1", "customer_id": "c1", "type": "visit",
         "ts": "2025-03-03T12:00:00+00:00", "venue_id": "v1", "amount": 20}


def journeys(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120, check=False,
                          env={**clean, **env})


@pytest.fixture
def prefix(redis_client: redis.Redis) -> object:
    run = uuid.uuid4().hex[:8]  # unique: concurrent runs share Redis
    names = [f"settings-file-{run}", f"settings-env-{run}", f"settings-flag-{run}"]
    yield names
    for name in names:
        delete_matching(redis_client, f"{name}*")


def test_the_file_then_the_environment_then_a_flag_decide(
        tmp_path: Path, redis_url: str, redis_client: redis.Redis, prefix: list[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(VISIT) + b"\n")
    settings = tmp_path / "run.toml"
    settings.write_text(f'journeys = ["{ROOT / "examples" / "journeys"}"]\n'
                        f'redis = "{redis_url}"\nprefix = "{prefix[0]}"\nshards = 2\n')
    base = ("run", "--events", str(events), "--commands", str(tmp_path / "c.jsonl"),
            "--dead-letter", str(tmp_path / "d.jsonl"))

    ran = journeys(*base, "--settings", str(settings), cwd=tmp_path, env={})
    assert ran.returncode == 0, ran.stderr
    assert redis_client.exists(f"{prefix[0]}:meta")
    assert int(redis_client.hget(f"{prefix[0]}:meta", "shards") or 0) == 2

    ran = journeys(*base, cwd=tmp_path, env={"JOURNEYS_SETTINGS": str(settings),
                                             "JOURNEYS_PREFIX": prefix[1]})
    assert ran.returncode == 0, ran.stderr
    assert redis_client.exists(f"{prefix[1]}:meta")

    ran = journeys(*base, "--prefix", prefix[2], cwd=tmp_path,
                   env={"JOURNEYS_SETTINGS": str(settings), "JOURNEYS_PREFIX": prefix[1]})
    assert ran.returncode == 0, ran.stderr
    assert redis_client.exists(f"{prefix[2]}:meta")


def test_a_bad_setting_is_one_line_naming_where_it_came_from(tmp_path: Path) -> None:
    settings = tmp_path / "run.yaml"
    settings.write_text("journeys: [x.yaml]\nbatch_lines: many\n")
    ran = journeys("run", "--settings", str(settings), "--events", "e.jsonl", cwd=tmp_path,
                   env={})
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [
        f"journeys: {settings}: batch_lines: Input should be a valid integer, unable to parse "
        "string as an integer"]
