"""Kill -9 Redis mid-run and restart it: the engine waits, resumes, and loses nothing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

from engine.app.generator import ChainConfig, write_jsonl
from engine.storage.embedded_redis import redis_server_binary

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"
JOURNEYS = ["02_lost_regular.yaml", "03_birthday.yaml", "08_points_expiry.yaml",
            "09_review_request.yaml"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir",
         str(folder), "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                return server
        except (redis.RedisError, OSError):
            time.sleep(0.05)
    server.kill()
    raise TimeoutError(f"redis-server on {port} did not start")


def run(events: Path, commands: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "engine", "run", "--journeys",
            *[str(EXAMPLES / name) for name in JOURNEYS], "--events", str(events),
            "--commands", str(commands), "--dead-letter", str(commands) + ".dead",
            "--redis", url, "--prefix", "outage", "--shards", "4", "--outage-limit", "60"]


def test_the_engine_rides_out_a_redis_crash(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=17, customers=700, days=300), events)
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    server = start_redis(port, data)
    try:
        clean = tmp_path / "clean.jsonl"
        subprocess.run(run(events, clean, f"redis://127.0.0.1:{port}/1"), check=True,
                       capture_output=True, timeout=300)
        crashed = tmp_path / "crashed.jsonl"
        crashed.touch()
        engine = subprocess.Popen(run(events, crashed, f"redis://127.0.0.1:{port}/0"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while crashed.stat().st_size < 0.3 * clean.stat().st_size:
            assert engine.poll() is None, "the run ended before Redis could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        time.sleep(1.5)
        server = start_redis(port, data)  # replays its append-only file
        _, stderr = engine.communicate(timeout=240)
        assert engine.returncode == 0, stderr.decode()[-3000:]
        assert "lost the connection to Redis" in stderr.decode()
    finally:
        server.kill()
        server.wait(timeout=10)
    expected = {c["command_id"]: c for c in map(orjson.loads, clean.read_bytes().splitlines())}
    delivered: dict[str, dict] = {}
    for command in map(orjson.loads, crashed.read_bytes().splitlines()):
        assert delivered.setdefault(command["command_id"], command) == command
    assert set(delivered) == set(expected)
    assert all(delivered[key] == expected[key] for key in expected)
